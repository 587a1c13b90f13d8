package matrix

import (
	"errors"
	"strings"
)

var (
	// ErrNoXMatrix: no Authorization header with the X-Matrix scheme.
	ErrNoXMatrix = errors.New("matrix: no X-Matrix authorization")
	// ErrBadXMatrix: an X-Matrix header that cannot be used (syntax,
	// missing or invalid origin, invalid destination, disagreeing headers).
	ErrBadXMatrix = errors.New("matrix: invalid X-Matrix authorization")
)

// MaxAuthorizationLength bounds one Authorization header value.
const MaxAuthorizationLength = 8192

// XMatrix holds the parameters of an X-Matrix Authorization header. Origin
// and Destination are lower-cased; Destination is empty when not sent.
type XMatrix struct {
	Origin, Destination, Key, Sig string
}

// ParseXMatrix reads the X-Matrix authorization from all Authorization header
// values of a request. The scheme and the parameter names are
// case-insensitive; values may be quoted strings (with backslash escapes) or
// unquoted. Unknown parameters are ignored.
//
// A server may send one header per signing key. Every X-Matrix header must
// then parse and all must name the same origin and destination: the proxy
// must check the very origin the homeserver authenticates, and when headers
// disagree it cannot know which one that is, so it refuses. Headers of other
// schemes are skipped. The signature itself is checked by the homeserver.
func ParseXMatrix(authorizationValues []string) (XMatrix, error) {
	origin, destination, key, sig, err := parseXMatrix(authorizationValues)
	return XMatrix{Origin: origin, Destination: destination, Key: key, Sig: sig}, err
}

// XMatrixOrigin is ParseXMatrix for the proxy, which checks only origin and
// destination: it returns them, not a struct. In Wasm a struct of
// XMatrix's size is cleared and copied with bulk-memory calls, which cost
// more than half of the parse.
func XMatrixOrigin(authorizationValues []string) (origin, destination string, err error) {
	origin, destination, _, _, err = parseXMatrix(authorizationValues)
	return origin, destination, err
}

func parseXMatrix(authorizationValues []string) (origin, destination, key, sig string, err error) {
	found := false
	for _, v := range authorizationValues {
		if len(v) > MaxAuthorizationLength {
			return "", "", "", "", ErrBadXMatrix
		}
		var o, d, k, s string
		ok := false
		if len(v) > len("X-Matrix ") && load8(v, 0) == load8("X-Matrix", 0) && v[8] == ' ' {
			o, d, k, s, ok = commonParams(v[len("X-Matrix "):])
		}
		if !ok {
			i := schemeStart(v)
			if !isXMatrixScheme(v[i:]) {
				continue
			}
			if o, d, k, s, ok = parseXMatrixParams(v[i+len("X-Matrix "):]); !ok {
				return "", "", "", "", ErrBadXMatrix
			}
		}
		if !found {
			origin, destination, key, sig, found = o, d, k, s, true
		} else if o != origin || d != destination {
			return "", "", "", "", ErrBadXMatrix
		}
	}
	if !found {
		return "", "", "", "", ErrNoXMatrix
	}
	return origin, destination, key, sig, nil
}

// HasXMatrixScheme reports whether an Authorization value names the X-Matrix
// scheme: exactly the values ParseXMatrix reads (it skips all others), so
// a request none of whose values does carries no X-Matrix facts, whatever
// its other Authorization values say.
func HasXMatrixScheme(v string) bool { return isXMatrixScheme(v[schemeStart(v):]) }

// schemeStart skips the blanks before an Authorization value's scheme.
func schemeStart(v string) int {
	i := 0
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

// isXMatrixScheme reports whether v starts with the scheme name X-Matrix in
// any case, followed by a space or tab. No non-ASCII character case-folds to
// one of its letters, so a bytewise ASCII comparison is exact.
func isXMatrixScheme(v string) bool {
	return len(v) > 8 && (v[8] == ' ' || v[8] == '\t') &&
		v[0]|0x20 == 'x' && v[1] == '-' && v[2]|0x20 == 'm' && v[3]|0x20 == 'a' &&
		v[4]|0x20 == 't' && v[5]|0x20 == 'r' && v[6]|0x20 == 'i' && v[7]|0x20 == 'x'
}

// Byte classes of the X-Matrix parameter syntax.
const (
	xmToken    = 1 << iota // RFC 9110 tchar: a parameter name
	xmUnquoted             // may appear in an unquoted value
	xmQText                // may appear unescaped in a quoted value
)

var xmClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			t[c] |= xmToken
		}
		// Unquoted: up to the next separator. Wider than an RFC 9110
		// token because server names with ports (":") are sent unquoted.
		if b > 0x20 && b != 0x7f && b != '"' && b != ',' {
			t[c] |= xmUnquoted
		}
		if (b >= 0x20 || b == '\t') && b != 0x7f && b != '"' && b != '\\' {
			t[c] |= xmQText
		}
	}
	return t
}()

// commonParams reads the parameter list as homeservers send it: origin
// first, then destination, key and sig (the specification's example), or
// key, sig and destination (Synapse), or no destination; names in lower
// case, quoted values, single commas, no blanks; origin and destination
// lower-case DNS names (see plainServerName). It reports ok only when
// parseXMatrixParams would accept the list with the same result; anything
// else, valid or not, is left to parseXMatrixParams.
//
// In Wasm it is calls and taken branches, not the bytes, that cost most
// (see parseXMatrixParams): this path runs straight through, recognises
// each name together with the comma before it by one or two word
// comparisons where it must start, delimits each value by one
// strings.IndexByte and checks the values a word at a time. A loop over the
// parameters in any order cost half as much again.
func commonParams(p string) (origin, destination, key, sig string, ok bool) {
	const mask6 = "\xff\xff\xff\xff\xff\xff\x00\x00"
	if len(p) < 8 || load8(p, 0) != load8(`origin="`, 0) {
		return
	}
	// The four quoted values are found in line, not by a helper: the call
	// (too large to be inlined) cost a quarter of the whole parse in Wasm.
	i := len(`origin="`)
	q := strings.IndexByte(p[i:], '"') + i
	if q < i {
		return
	}
	origin, i = p[i:q], q+1
	dest := destinationAt(p, i)
	if dest {
		i += len(`,destination="`)
		q = strings.IndexByte(p[i:], '"') + i
		if q < i {
			return
		}
		destination, i = p[i:q], q+1
	}
	if len(p)-i < 8 || load8(p, i)&load8(mask6, 0) != load8(",key=\"\x00\x00", 0) {
		return
	}
	i += len(`,key="`)
	q = strings.IndexByte(p[i:], '"') + i
	if q < i {
		return
	}
	key, i = p[i:q], q+1
	if len(p)-i < 8 || load8(p, i)&load8(mask6, 0) != load8(",sig=\"\x00\x00", 0) {
		return
	}
	i += len(`,sig="`)
	q = strings.IndexByte(p[i:], '"') + i
	if q < i {
		return
	}
	sig, i = p[i:q], q+1
	if !dest && destinationAt(p, i) {
		i += len(`,destination="`)
		q = strings.IndexByte(p[i:], '"') + i
		if q < i {
			return
		}
		destination, i = p[i:q], q+1
		dest = true
	}
	if i != len(p) || !plainServerName(origin) || dest && !plainServerName(destination) ||
		!plainQuoted(key) || !plainQuoted(sig) {
		return "", "", "", "", false
	}
	return origin, destination, key, sig, true
}

// destinationAt reports whether p[i:] starts with `,destination="`.
func destinationAt(p string, i int) bool {
	return len(p)-i >= len(`,destination="`) && load8(p, i) == load8(`,destina`, 0) && load8(p, i+6) == load8(`nation="`, 0)
}

// plainServerName reports whether s is a server name that ParseServerName
// accepts with a DNS host (not an IPv4 address) and that has no capital
// letter, so that lower-casing leaves it as it is: 8 to 63 bytes of
// lower-case letters, digits, "-" and ".", no empty label, not all digits
// and dots, and an optional port of 1..65535 without leading zero. It may
// answer false for some such names (shorter or longer ones); callers then
// ask ParseServerName. Within 63 bytes no label can be too long.
func plainServerName(s string) bool {
	n := len(s)
	if n < 8 || n > 63 || s[0] == '.' || s[n-1] == '.' {
		return false
	}
	// A word at a time, the words seven bytes apart so that every pair of
	// neighbours shares a word ("..": an empty label); as in checkHost.
	var bad, alpha, colon uint64
	for j := 0; ; j += 7 {
		if j > n-8 {
			j = n - 8
		}
		x := load8(s, j)
		b7 := x &^ highs
		digit := above(b7, '0'-1) & below(b7, '9'+1)
		letter := above(b7, 'a'-1)&below(b7, 'z'+1) | above(b7, '-'-1)&below(b7, '-'+1)
		dots := above(b7, '.'-1) & below(b7, '.'+1)
		colons := above(b7, ':'-1) & below(b7, ':'+1)
		bad |= highs&^((digit|letter|dots|colons)&^x) | dots&(dots<<8)
		alpha |= letter
		colon |= colons
		if j == n-8 {
			break
		}
	}
	if bad != 0 || alpha == 0 {
		return false
	}
	if colon == 0 {
		return true
	}
	// The port: only digits after the first colon (so no second colon,
	// and the letters counted above are the host's).
	c := strings.IndexByte(s, ':')
	p := s[c+1:]
	if c == 0 || s[c-1] == '.' || len(p) == 0 || len(p) > 5 || p[0] == '0' {
		return false
	}
	port := 0
	for j := 0; j < len(p); j++ {
		d := p[j]
		if d < '0' || d > '9' {
			return false
		}
		port = port*10 + int(d-'0')
	}
	return port <= 65535
}

// parseXMatrixParams reads the parameter list after the scheme and returns
// the validated, lower-cased origin and destination, and key and sig. It is
// the general path: every spelling the grammar allows, and the reference
// for commonParams, which handles the usual one.
//
// In Wasm, Go code pays for every call, every taken branch (a jump through
// the function's dispatch table) and every byte a loop visits, so quoted
// values of known names are read without byte loops: strings.IndexByte (assembly) finds
// "=" and the closing quote, the known names are compared directly, and a
// quoted value is checked a word at a time. Anything unusual (unknown
// names, escapes, unquoted values) takes the byte-by-byte path, which
// decides the same way.
func parseXMatrixParams(p string) (origin, destination, key, sig string, ok bool) {
	var seen, escaped uint8 // bit k: parameter k (knownParam) was seen / has escapes
	i := 0
	for {
		for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == ',') {
			i++
		}
		if i == len(p) {
			break
		}
		// name *(SP / HTAB) "="
		eq := strings.IndexByte(p[i:], '=')
		if eq < 0 {
			return "", "", "", "", false
		}
		eq += i
		ne := eq
		for ne > i && (p[ne-1] == ' ' || p[ne-1] == '\t') {
			ne--
		}
		k := knownParam(p, i, ne)
		if k < 0 && !isToken(p[i:ne]) {
			return "", "", "", "", false
		}
		i = eq + 1
		for i < len(p) && (p[i] == ' ' || p[i] == '\t') {
			i++
		}
		if i == len(p) {
			return "", "", "", "", false
		}
		var start, end int
		esc := false
		if p[i] == '"' {
			i++
			start = i
			q := strings.IndexByte(p[i:], '"')
			if q >= 0 && plainQuoted(p[i:i+q]) {
				i += q
			} else if i, esc = quotedEnd(p, i); i < 0 {
				return "", "", "", "", false
			}
			end = i
			i++
		} else {
			start = i
			for i < len(p) && xmClass[p[i]]&xmUnquoted != 0 {
				i++
			}
			if i == start || i < len(p) && p[i] != ',' && p[i] != ' ' && p[i] != '\t' {
				return "", "", "", "", false
			}
			end = i
		}
		for i < len(p) && (p[i] == ' ' || p[i] == '\t') {
			i++
		}
		if i < len(p) && p[i] != ',' {
			return "", "", "", "", false
		}
		if k < 0 {
			continue
		}
		if seen&(1<<k) != 0 {
			// Homeservers differ on which duplicate wins; refuse.
			return "", "", "", "", false
		}
		seen |= 1 << k
		if esc {
			escaped |= 1 << k
		}
		switch k {
		case 0:
			origin = p[start:end]
		case 1:
			destination = p[start:end]
		case 2:
			key = p[start:end]
		default:
			sig = p[start:end]
		}
	}
	if escaped != 0 {
		origin, destination, key, sig = unescapeParams(origin, destination, key, sig, escaped)
	}
	if origin == "" {
		return "", "", "", "", false
	}
	if _, _, err := ParseServerName(origin); err != nil {
		return "", "", "", "", false
	}
	if seen&2 != 0 {
		if _, _, err := ParseServerName(destination); err != nil {
			return "", "", "", "", false
		}
	}
	return lowerASCII(origin), lowerASCII(destination), key, sig, true
}

// unescapeParams resolves the escapes of the values whose bit is set in
// escaped. A function of its own, so that the rare path does not swell
// parseXMatrixParams (in Wasm every block of a function is a target of its
// dispatch table).
func unescapeParams(origin, destination, key, sig string, escaped uint8) (string, string, string, string) {
	vals := [4]*string{&origin, &destination, &key, &sig}
	for k, v := range vals {
		if escaped&(1<<k) != 0 {
			*v = unescapeQuoted(*v)
		}
	}
	return origin, destination, key, sig
}

// knownParam returns the index of origin, destination, key or sig in
// this order for the parameter name p[i:e] in any case, or -1.
//
// The name is compared a word at a time where p holds eight bytes from i:
// OR-ing 0x20 into a byte maps exactly its two cases onto a lower-case
// letter (see foldEquals), and bytes beyond the name are masked off. Mask,
// fold and name words are loaded from strings like the input, so the
// comparison does not depend on byte order.
func knownParam(p string, i, e int) int {
	const fold = 0x2020202020202020
	name := p[i:e]
	switch len(name) {
	case len("destination"):
		if load8(name, 0)|fold == load8("destination", 0) && load8(name, 3)|fold == load8("destination", 3) {
			return 1
		}
	case len("origin"):
		if i+8 > len(p) {
			if foldEquals(name, "origin") {
				return 0
			}
			break
		}
		const mask = "\xff\xff\xff\xff\xff\xff\x00\x00"
		if (load8(p, i)|fold)&load8(mask, 0) == load8("origin\x00\x00", 0) {
			return 0
		}
	case len("key"):
		if i+8 > len(p) {
			if foldEquals(name, "key") {
				return 2
			}
			if foldEquals(name, "sig") {
				return 3
			}
			break
		}
		const mask = "\xff\xff\xff\x00\x00\x00\x00\x00"
		switch (load8(p, i) | fold) & load8(mask, 0) {
		case load8("key\x00\x00\x00\x00\x00", 0):
			return 2
		case load8("sig\x00\x00\x00\x00\x00", 0):
			return 3
		}
	}
	return -1
}

// plainQuoted reports whether s holds only bytes that may stand unescaped in
// a quoted value other than the tab (a tab takes the byte path).
func plainQuoted(s string) bool {
	if len(s) < 8 {
		for j := 0; j < len(s); j++ {
			if c := s[j]; c < 0x20 || c == '\\' || c == 0x7f {
				return false
			}
		}
		return true
	}
	for j := 0; ; j += 8 {
		if j > len(s)-8 {
			j = len(s) - 8
		}
		if x := load8(s, j); hasLess(x, 0x20) || hasByte(x, '\\') || hasByte(x, 0x7f) {
			return false
		}
		if j == len(s)-8 {
			return true
		}
	}
}

// quotedEnd reads a quoted value byte by byte from i (after the opening
// quote) and returns the index of the closing quote, or -1 when the value is
// unterminated or holds a byte that is not allowed.
func quotedEnd(p string, i int) (end int, escaped bool) {
	for ; i < len(p); i++ {
		c := p[i]
		if xmClass[c]&xmQText != 0 {
			continue
		}
		if c == '"' {
			return i, escaped
		}
		if c != '\\' || i+1 == len(p) || p[i+1] < 0x20 || p[i+1] == 0x7f {
			return -1, false
		}
		escaped = true
		i++
	}
	return -1, false
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if xmClass[s[i]]&xmToken == 0 {
			return false
		}
	}
	return true
}

// foldEquals compares a parameter name (a token, so ASCII) with lower, which
// holds lower-case letters only: c|0x20 equals such a letter exactly for
// its two cases.
func foldEquals(name, lower string) bool {
	for i := 0; i < len(lower); i++ {
		if name[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// lowerASCII is strings.ToLower without its call and byte loop for the
// usual text that has nothing to lower.
func lowerASCII(s string) string {
	if len(s) >= 8 {
		for j := 0; ; j += 8 {
			if j > len(s)-8 {
				j = len(s) - 8
			}
			if hasUpperOrHigh(load8(s, j)) {
				return strings.ToLower(s)
			}
			if j == len(s)-8 {
				return s
			}
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// unescapeQuoted resolves the backslash escapes of a validated quoted value:
// each backslash stands for the byte after it.
func unescapeQuoted(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}
