package filter

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// serialize is the host side of the map layout.
func serialize(hs [][2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(hs)))
	for _, h := range hs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(h[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(h[1])))
	}
	for _, h := range hs {
		b = append(append(b, h[0]...), 0)
		b = append(append(b, h[1]...), 0)
	}
	return b
}

func TestParseHeaderPairs(t *testing.T) {
	hs := [][2]string{{":method", "GET"}, {":path", "/_matrix/client/v3/sync"}, {"x-empty", ""}, {"", "v"}}
	good := serialize(hs)
	got, err := parseHeaderPairs(nil, good)
	if err != nil || !reflect.DeepEqual(got, hs) {
		t.Fatalf("got %q, %v", got, err)
	}
	if got, err := parseHeaderPairs(nil, serialize(nil)); err != nil || len(got) != 0 {
		t.Errorf("empty map: %q, %v", got, err)
	}
	bad := map[string][]byte{
		"short":          good[:3],
		"truncated":      good[:len(good)-1],
		"count too high": append(binary.LittleEndian.AppendUint32(nil, 1<<30), good[4:]...),
		"size too high":  append(append(append([]byte{}, good[:4]...), 0xff, 0xff, 0xff, 0x7f), good[8:]...),
	}
	for name, b := range bad {
		if got, err := parseHeaderPairs(nil, b); err == nil {
			t.Errorf("%s: accepted as %q", name, got)
		}
	}
}

func FuzzParseHeaderPairs(f *testing.F) {
	f.Add(serialize([][2]string{{":path", "/"}, {"a", "b"}}))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := parseHeaderPairs(nil, b)
		if err != nil {
			return
		}
		// The terminators are not checked, so re-encoding matches the input
		// but for them.
		again := serialize(hs)
		if len(again) > len(b) {
			t.Fatalf("pairs %q are longer than the input", hs)
		}
		for i := range again {
			if again[i] != b[i] && again[i] != 0 {
				t.Fatalf("pairs %q do not re-encode to the input at byte %d", hs, i)
			}
		}
	})
}
