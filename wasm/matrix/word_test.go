package matrix

import (
	"math/rand/v2"
	"testing"
)

// TestWordPredicates compares the word tests with byte loops on random words
// biased towards the bytes that matter.
func TestWordPredicates(t *testing.T) {
	special := []byte{0, 1, 0x1f, 0x20, 0x21, '"', '\\', ',', 0x7e, 0x7f, 0x80, 0x81, 0xff, '\t', 'a'}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200000; n++ {
		var b [8]byte
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = special[r.IntN(len(special))]
			} else {
				b[i] = byte(r.IntN(256))
			}
		}
		x := load8(string(b[:]), 0)
		for _, lim := range []byte{0x20, 0x21, 0x80} {
			want := false
			for _, c := range b {
				want = want || c < lim
			}
			if got := hasLess(x, lim); got != want {
				t.Fatalf("hasLess(% x, %#x) = %v", b, lim, got)
			}
		}
		for _, c := range special {
			want := false
			for _, d := range b {
				want = want || d == c
			}
			if got := hasByte(x, c); got != want {
				t.Fatalf("hasByte(% x, %#x) = %v", b, c, got)
			}
		}
	}
}

func TestEqualsAt(t *testing.T) {
	for _, c := range []struct {
		s    string
		i    int
		lit  string
		want bool
	}{
		{"/createRoom", 1, "createRoom", true},
		{"/createRoom/", 1, "createRoom", true},
		{"/createRoo", 1, "createRoom", false},
		{"/createRoox", 1, "createRoom", false},
		{"/xreateRoom", 1, "createRoom", false},
		{"/_matrix/client/", 0, "/_matrix/client/", true},
		{"/_matrix/client", 0, "/_matrix/client/", false},
		{"/_matrix/clienT/", 0, "/_matrix/client/", false},
		{"download", 0, "download", true},
		{"/thumbnail", 1, "thumbnail", true},
		{"/thumbnaiX", 1, "thumbnail", false},
		{"/Thumbnail", 1, "thumbnail", false},
	} {
		if got := equalsAt(c.s, c.i, c.lit); got != c.want {
			t.Errorf("equalsAt(%q, %d, %q) = %v", c.s, c.i, c.lit, got)
		}
	}
}

// TestCheckHostWords compares the word-at-a-time path of checkHost with
// its byte path on random names of 8 to 63 bytes made mostly of the bytes
// that matter.
func TestCheckHostWords(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []byte("09AZaz-..../:@`[{\x00\x7f\x80\xff\xae\xad\xb0\xc1\xe1")
	for n := 0; n < 300000; n++ {
		b := make([]byte, 8+r.IntN(56))
		for i := range b {
			switch r.IntN(4) {
			case 0:
				b[i] = special[r.IntN(len(special))]
			case 1:
				b[i] = byte(r.IntN(256))
			default:
				b[i] = "abc123-"[r.IntN(7)]
			}
		}
		h := string(b)
		gotNum, gotOK := checkHost(h)
		wantNum, wantOK := checkHostBytes(h)
		if gotOK != wantOK || gotOK && gotNum != wantNum {
			t.Fatalf("checkHost(%q) = %v %v, byte path %v %v", h, gotNum, gotOK, wantNum, wantOK)
		}
		// Also without the random bytes outside the alphabet.
		for i := range b {
			if r.IntN(3) == 0 {
				b[i] = '.'
			} else {
				b[i] = "a1Z-"[r.IntN(4)]
			}
		}
		h = string(b)
		gotNum, gotOK = checkHost(h)
		wantNum, wantOK = checkHostBytes(h)
		if gotOK != wantOK || gotOK && gotNum != wantNum {
			t.Fatalf("checkHost(%q) = %v %v, byte path %v %v", h, gotNum, gotOK, wantNum, wantOK)
		}
	}
}
