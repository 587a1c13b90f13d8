package matrix

// A single-pass JSON scanner for request bodies. It accepts exactly what
// encoding/json's Unmarshal accepts (the grammar of RFC 8259, whitespace
// " \t\r\n", bytes of invalid UTF-8 inside strings tolerated, nesting up to
// maxDepth) and records where the wanted top-level members' values lie, so
// reading a createRoom body allocates nothing but the IDs it returns.

// maxDepth bounds nesting at encoding/json's limit, which the proxy applied
// before this scanner, so no body it accepted then is refused now. Deeper
// bodies are ErrNotJSON. The kinds of the open containers are kept as
// a bit set: 64 levels in a word on the stack, a heap-allocated set only for
// a body nested deeper, so a typical body does not pay for clearing 1.25 KB
// on every call.
const maxDepth = 10000

// span is the byte range of a member's value; end is 0 when the member was
// absent (a value inside an object never ends at 0). Two words, so that an
// array of two is cleared with plain stores: in Wasm larger values are
// cleared with a bulk-memory call that costs more than the stores.
type span struct {
	start, end int
}

func (s span) of(b []byte) ([]byte, bool) {
	if s.end == 0 {
		return nil, false
	}
	return b[s.start:s.end], true
}

// objectMembers validates b as a single JSON object surrounded by optional
// whitespace and stores in found[k] the value range of the last top-level
// member named keys[k] (names compared after unescaping). Anything else is
// ErrNotJSON.
func objectMembers(b []byte, keys []string, found []span) error {
	var shallow [1]uint64
	objects := shallow[:] // bit d set: the container at depth d+1 is an object
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrNotJSON
	}
	objects[0] = 1
	depth := 1
	member := -1 // index into keys of the top-level member being read
	start := 0
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		depth = 0
		i++
	} else {
		var ok bool
		if i, member, ok = scanKey(b, i, keys); !ok {
			return ErrNotJSON
		}
	}
	for depth > 0 {
		// A value starts at i (possibly after whitespace).
		i = skipSpace(b, i)
		if i >= len(b) {
			return ErrNotJSON
		}
		if depth == 1 {
			start = i
		}
		ok := true
		switch c := b[i]; c {
		case '{', '[':
			if depth == maxDepth {
				return ErrNotJSON
			}
			if depth == 64 && len(objects) == 1 {
				objects = make([]uint64, maxDepth/64+1)
				objects[0] = shallow[0]
			}
			if c == '{' {
				objects[depth/64] |= 1 << (depth % 64)
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipSpace(b, i+1)
			if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
				depth--
				i++
				break
			}
			if c == '{' {
				if i, _, ok = scanKey(b, i, nil); !ok {
					return ErrNotJSON
				}
			}
			continue
		case '"':
			i, ok = scanString(b, i)
		case 't':
			i, ok = scanLiteral(b, i, "true")
		case 'f':
			i, ok = scanLiteral(b, i, "false")
		case 'n':
			i, ok = scanLiteral(b, i, "null")
		default:
			i, ok = scanNumber(b, i)
		}
		if !ok {
			return ErrNotJSON
		}
		// A value ended at i: close containers until a ',' opens the next
		// value or the top-level object ends.
		for {
			if depth == 1 && member >= 0 {
				found[member] = span{start, i}
				member = -1
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return ErrNotJSON
			}
			d := depth - 1
			object := objects[d/64]&(1<<(d%64)) != 0
			if b[i] == ',' {
				i++
				if object {
					var k int
					var names []string // only top-level names matter
					if depth == 1 {
						names = keys
					}
					if i, k, ok = scanKey(b, skipSpace(b, i), names); !ok {
						return ErrNotJSON
					}
					if depth == 1 {
						member = k
					}
				}
				break
			}
			if object && b[i] != '}' || !object && b[i] != ']' {
				return ErrNotJSON
			}
			i++
			depth--
			if depth == 0 {
				break
			}
		}
	}
	if skipSpace(b, i) != len(b) {
		return ErrNotJSON
	}
	return nil
}

// scanKey reads `"name"` and the following ':' from i; k is the index of
// the name in keys, or -1.
func scanKey(b []byte, i int, keys []string) (next, k int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, -1, false
	}
	end, ok := scanString(b, i)
	if !ok {
		return 0, -1, false
	}
	k = -1
	raw := b[i+1 : end-1]
	for j, key := range keys {
		// The keys are plain ASCII without backslashes, and ASCII text
		// never decodes to more bytes than it has. So a shorter raw name,
		// or one whose first byte is neither the key's nor a backslash,
		// differs; one of the same length equals only byte for byte. Only
		// a longer one with escapes needs decoding (unquotedEquals, a
		// call, which costs in Wasm).
		switch {
		case len(raw) < len(key) || raw[0] != key[0] && raw[0] != '\\':
		case len(raw) == len(key):
			if string(raw) == key {
				k = j
			}
		case unquotedEquals(raw, key):
			k = j
		}
		if k >= 0 {
			break
		}
	}
	end = skipSpace(b, end)
	if end >= len(b) || b[end] != ':' {
		return 0, -1, false
	}
	return end + 1, k, true
}

// scanString validates the string starting with the quote at i and returns
// the index after its closing quote. Control characters must be escaped;
// other bytes, including invalid UTF-8, are accepted as by encoding/json.
func scanString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control character (see word.go), then byte by byte.
		for i+8 <= len(b) {
			if x := load8(bytesString(b), i); hasLess(x, 0x20) || hasByte(x, '"') || hasByte(x, '\\') {
				break
			}
			i += 8
		}
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

// plain marks the bytes a string may hold unescaped, other than the quote
// and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? from
// i. What may follow is checked by the caller.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}
