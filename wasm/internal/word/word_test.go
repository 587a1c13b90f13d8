package word

import (
	"strings"
	"testing"
)

// TestEqual: Equal and Short agree with == for every length and every
// position of a difference.
func TestEqual(t *testing.T) {
	for n := 0; n <= 40; n++ {
		a := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2)[:n]
		b := strings.Clone(a)
		if !Equal(a, b) {
			t.Fatalf("length %d: equal strings compare unequal", n)
		}
		if n <= 16 && !Short(a, b) {
			t.Fatalf("length %d: Short: equal strings compare unequal", n)
		}
		if n > 0 && Equal(a, b[:n-1]) {
			t.Fatalf("length %d: a shorter string compares equal", n)
		}
		for i := 0; i < n; i++ {
			c := []byte(a)
			c[i] ^= 0x20
			if Equal(a, string(c)) {
				t.Errorf("length %d: a difference at %d compares equal", n, i)
			}
			if n <= 16 && Short(a, string(c)) {
				t.Errorf("length %d: Short: a difference at %d compares equal", n, i)
			}
		}
	}
}

// TestHash: equal strings hash alike; one changed byte, at any position,
// changes the hash, and so does the seed.
func TestHash(t *testing.T) {
	for n := 0; n <= 40; n++ {
		a := strings.Repeat("0123456789", 4)[:n]
		h := func(seed uint64, ss ...string) uint64 { return Hash(seed, ss) }
		if h(1, a) != h(1, strings.Clone(a)) {
			t.Fatalf("length %d: equal strings hash apart", n)
		}
		if h(1, a) == h(2, a) {
			t.Errorf("length %d: the seed does not change the hash", n)
		}
		for i := 0; i < n; i++ {
			c := []byte(a)
			c[i] ^= 0x01
			if h(1, a) == h(1, string(c)) {
				t.Errorf("length %d: a change at %d keeps the hash", n, i)
			}
			// The same bytes split into other strings.
			if h(1, a[:i], a[i:]) == h(1, a) || h(1, a[:i], a[i:]) == h(1, a[:i+1], a[i+1:]) {
				t.Errorf("length %d: a split at %d keeps the hash", n, i)
			}
		}
	}
	// A trailing zero byte is not the same key as none.
	if Hash(1, []string{"abc"}) == Hash(1, []string{"abc\x00"}) {
		t.Error("a trailing NUL keeps the hash")
	}
}

func FuzzEqual(f *testing.F) {
	f.Add("X-Matrix origin", "X-Matrix origin")
	f.Add("authorization", "authorizatioN")
	f.Fuzz(func(t *testing.T, a, b string) {
		if Equal(a, b) != (a == b) {
			t.Fatalf("Equal(%q, %q) = %v", a, b, !(a == b))
		}
		if len(a) == len(b) && Short(a, b) != (a == b) {
			t.Fatalf("Short(%q, %q) = %v", a, b, !(a == b))
		}
		if a == b && Hash(7, []string{a}) != Hash(7, []string{b}) {
			t.Fatal("equal strings hash apart")
		}
	})
}
