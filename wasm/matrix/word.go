package matrix

import "unsafe"

// Word-at-a-time helpers for the per-request parsers.
//
// The filter runs these parsers compiled to Wasm, where Go's byte loops cost
// about 2.5–7 ns per byte (measured: several times the native cost, and more
// than the call they would save) and a string comparison longer than six
// bytes calls a byte-by-byte runtime.memequal. Reading eight bytes at once
// and testing them together (SWAR) is about five times cheaper per byte.
// Only existence tests are used ("does this word hold a byte that ..."), so
// the results do not depend on the machine's byte order; positions are
// found byte by byte or with strings.IndexByte (assembly in Wasm).

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load8 returns the eight bytes s[i:i+8] as one word. The slice expression
// checks the bounds, so it never reads outside s.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return *(*uint64)(unsafe.Pointer(unsafe.StringData(s)))
}

// bytesString views b as a string without copying; the string must not
// outlive a change of b (the scanners read only during a call; unquote's
// views are documented on Invitees).
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// hasLess reports whether a byte of x is below n (n <= 128).
func hasLess(x uint64, n byte) bool {
	return (x-ones*uint64(n))&^x&highs != 0
}

// hasByte reports whether a byte of x equals c.
func hasByte(x uint64, c byte) bool {
	y := x ^ ones*uint64(c)
	return (y-ones)&^y&highs != 0
}

// equalsAt reports whether s[i:] starts with lit, for 8 <= len(lit) <= 16,
// with two (possibly overlapping) word comparisons instead of a memequal
// call. Small enough to be inlined.
func equalsAt(s string, i int, lit string) bool {
	if len(s)-i < len(lit) {
		return false
	}
	s = s[i : i+len(lit)]
	return load8(s, 0) == load8(lit, 0) && load8(s, len(s)-8) == load8(lit, len(lit)-8)
}

// The per-byte masks below work on the low seven bits of each byte (b7 =
// x &^ highs): adding or subtracting a per-byte constant then never carries
// into the next byte, so bit 7 of each byte answers for that byte alone.

// above marks the bytes of b7 greater than m (m <= 127).
func above(b7 uint64, m byte) uint64 { return (b7 + ones*uint64(127-m)) & highs }

// below marks the bytes of b7 less than n (n <= 128).
func below(b7 uint64, n byte) uint64 { return (ones*uint64(127+uint(n)) - b7) & highs }

// hasUpperOrHigh reports whether a byte of x is an ASCII capital or not
// ASCII at all.
func hasUpperOrHigh(x uint64) bool {
	b7 := x &^ highs
	return (above(b7, 'A'-1)&below(b7, 'Z'+1)|x)&highs != 0
}
