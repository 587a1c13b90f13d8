// Package word compares and hashes strings eight bytes at a time.
//
// The filter runs compiled to Wasm, where the runtime's string comparison
// (longer than six bytes), bytes.Equal and maphash go byte by byte through
// assembly loops, about 2 ns a byte: for the filter's keys and names they
// cost more than the work around them. Loading a word and comparing it
// whole is several times cheaper. Wasm loads need no alignment; so do the
// native targets the filter's tests run on.
package word

import "unsafe"

// Load returns s[i:i+8] as one number. The slice expression checks the
// bounds, so it never reads outside s. Small enough to be inlined.
func Load(s string, i int) uint64 {
	s = s[i : i+8]
	return *(*uint64)(unsafe.Pointer(unsafe.StringData(s)))
}

// Short is a == b for strings of 4 to 16 bytes (others compare with ==):
// two overlapping words each, small enough to be inlined where names and
// keys are matched.
func Short(a, b string) bool {
	n := len(a)
	if n < 4 || n > 16 || n != len(b) {
		return a == b
	}
	pa, pb := unsafe.Pointer(unsafe.StringData(a)), unsafe.Pointer(unsafe.StringData(b))
	if n < 8 {
		return *(*uint32)(pa) == *(*uint32)(pb) && *(*uint32)(unsafe.Add(pa, n-4)) == *(*uint32)(unsafe.Add(pb, n-4))
	}
	return *(*uint64)(pa) == *(*uint64)(pb) && *(*uint64)(unsafe.Add(pa, n-8)) == *(*uint64)(unsafe.Add(pb, n-8))
}

// Equal is a == b a word at a time.
func Equal(a, b string) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 {
		return a == b
	}
	for i := 0; i < n-8; i += 8 {
		if Load(a, i) != Load(b, i) {
			return false
		}
	}
	// The last word overlaps the one before when n is not a multiple of 8.
	return Load(a, n-8) == Load(b, n-8)
}

// Hash mixes the strings, each with its length, into a 64-bit hash (a
// multiply and xor-shift per word, then a final avalanche): meant for
// tables that compare whole keys after the hash matches; the seed keeps an
// outsider from choosing keys that collide. One call for all the strings:
// in Wasm a call costs as much as hashing a dozen words.
func Hash(seed uint64, ss []string) uint64 {
	const m1, m2 = 0x9e3779b97f4a7c15, 0xff51afd7ed558ccd
	h := seed
	for _, s := range ss {
		n := len(s)
		h = (h ^ uint64(n)) * m1
		i := 0
		for ; i+8 <= n; i += 8 {
			h = (h ^ Load(s, i)) * m2
			h ^= h >> 32
		}
		switch {
		case i == n:
		case n >= 8:
			// The last word, overlapping the one before.
			h = (h ^ Load(s, n-8)) * m2
			h ^= h >> 32
		default:
			var t uint64
			for j := n - 1; j >= 0; j-- {
				t = t<<8 | uint64(s[j])
			}
			h = (h ^ t) * m2
			h ^= h >> 32
		}
	}
	h ^= h >> 33
	h *= m1
	h ^= h >> 29
	return h
}
