package planvm

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting so that hostile documents cannot exhaust the
// stack.
const maxJSONDepth = 512

// ParseJSON parses one JSON document. Integers that fit int64 take the fast
// path; other numbers keep their text (arbitrary precision, as in OPA).
func ParseJSON(b []byte) (Value, error) {
	// One copy of the document; strings and number texts without escapes
	// are substrings of it and cost no further allocation.
	p := parser{s: string(b)}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.ws()
	if p.i != len(p.s) {
		return Value{}, p.errf("trailing data")
	}
	return v, nil
}

type parser struct {
	s       string
	i       int
	scratch []Value // members of the arrays and objects being parsed
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("planvm: json at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if depth > maxJSONDepth {
		return Value{}, p.errf("nesting too deep")
	}
	if p.i >= len(p.s) {
		return Value{}, p.errf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return Value{}, err
		}
		return String(s), nil
	case c == 't':
		return p.lit("true", Bool(true))
	case c == 'f':
		return p.lit("false", Bool(false))
	case c == 'n':
		return p.lit("null", Null())
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return Value{}, p.errf("unexpected %q", p.s[p.i])
}

func (p *parser) lit(word string, v Value) (Value, error) {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return Value{}, p.errf("invalid literal")
	}
	p.i += len(word)
	return v, nil
}

func (p *parser) object(depth int) (Value, error) {
	base := len(p.scratch)
	defer func() { p.scratch = p.scratch[:base] }()
	err := p.members(func(k string) error {
		v, err := p.value(depth + 1)
		if err != nil {
			return err
		}
		p.scratch = append(p.scratch, String(k), v)
		return nil
	})
	if err != nil {
		return Value{}, err
	}
	members := p.scratch[base:]
	obj := emptyObject(len(members) / 2)
	for j := 0; j < len(members); j += 2 {
		obj.c.objInsert(members[j], members[j+1]) // later duplicates win
	}
	clear(members)
	return obj, nil
}

// members reads an object (p.i at its '{'), calling member with each key
// once the value is next to be read; member reads the value.
func (p *parser) members(member func(k string) error) error {
	p.i++ // {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return p.errf("expected object key")
		}
		k, err := p.str()
		if err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.errf("expected ':'")
		}
		p.i++
		p.ws()
		if err := member(k); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.s) {
			return p.errf("unexpected end in object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errf("expected ',' or '}'")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	base := len(p.scratch)
	defer func() { p.scratch = p.scratch[:base] }()
	err := p.elements(func(int) error {
		v, err := p.value(depth + 1)
		if err != nil {
			return err
		}
		p.scratch = append(p.scratch, v)
		return nil
	})
	if err != nil {
		return Value{}, err
	}
	if len(p.scratch) == base {
		return arrayOf(nil), nil
	}
	elems := slices.Clone(p.scratch[base:])
	clear(p.scratch[base:])
	return arrayOf(elems), nil
}

// elements reads an array (p.i at its '['), calling element with each
// index once the element is next to be read; element reads it.
func (p *parser) elements(element func(i int) error) error {
	p.i++ // [
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return nil
	}
	for i := 0; ; i++ {
		p.ws()
		if err := element(i); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.s) {
			return p.errf("unexpected end in array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errf("expected ',' or ']'")
		}
	}
}

func (p *parser) number() (Value, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if digits() == 0 {
		return Value{}, p.errf("invalid number")
	}
	if p.s[intStart] == '0' && p.i-intStart > 1 {
		return Value{}, p.errf("invalid number: leading zero")
	}
	isInt := true
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		isInt = false
		if digits() == 0 {
			return Value{}, p.errf("invalid number")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		isInt = false
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return Value{}, p.errf("invalid number")
		}
	}
	text := p.s[start:p.i]
	if isInt {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return Int(n), nil
		}
	}
	return Value{k: KindNumber, text: true, s: text}, nil
}

// str parses a JSON string starting at the opening quote.
func (p *parser) str() (string, error) {
	p.i++ // "
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := p.s[start:p.i]
			p.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return p.strSlow(start)
		}
		p.i++
	}
	return "", p.errf("unterminated string")
}

func (p *parser) strSlow(start int) (string, error) {
	buf := make([]byte, 0, p.i-start+16)
	buf = append(buf, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c == '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", p.errf("unterminated escape")
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// As encoding/json: a valid pair is one rune; otherwise
					// this escape is U+FFFD and the next one is read on
					// its own (it may start a pair itself).
					r2, save := rune(-1), p.i
					if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
						p.i += 2
						if x, ok := p.hex4(); ok {
							r2 = x
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						r, p.i = utf8.RuneError, save
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", p.errf("invalid escape")
			}
		case c < 0x80:
			buf = append(buf, c)
			p.i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			if r == utf8.RuneError && size <= 1 {
				buf = utf8.AppendRune(buf, utf8.RuneError)
				p.i++
				continue
			}
			buf = append(buf, p.s[p.i:p.i+size]...)
			p.i += size
		}
	}
	return "", p.errf("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.s[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

func validNumber(s string) bool {
	if s == "" {
		return false
	}
	p := parser{s: s}
	_, err := p.number()
	return err == nil && p.i == len(s)
}

// ErrUndefined is returned by ToJSON for an undefined value.
var ErrUndefined = errors.New("planvm: undefined value")

// ToJSON encodes v canonically: object keys sorted, sets as sorted arrays,
// numbers as their JSON text, strings escaped like Go's encoding/json
// (including its HTML-safe escapes, as OPA's output does). Objects with
// non-string keys get their keys encoded as JSON text, as OPA does.
func ToJSON(v Value) ([]byte, error) {
	return AppendJSON(nil, v)
}

// AppendJSON appends the canonical JSON of v to buf.
func AppendJSON(buf []byte, v Value) ([]byte, error) {
	switch v.k {
	case KindUndefined:
		return buf, ErrUndefined
	case KindNull:
		return append(buf, "null"...), nil
	case KindBool:
		if v.i != 0 {
			return append(buf, "true"...), nil
		}
		return append(buf, "false"...), nil
	case KindNumber:
		if v.text {
			return append(buf, v.s...), nil
		}
		return strconv.AppendInt(buf, v.i, 10), nil
	case KindString:
		return appendJSONString(buf, v.s), nil
	case KindArray:
		buf = append(buf, '[')
		for i, e := range v.c.elems {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = AppendJSON(buf, e); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case KindSet:
		buf = append(buf, '[')
		for i, j := range v.c.sortedOrder() {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = AppendJSON(buf, v.c.elems[j]); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case KindObject:
		return appendObject(buf, v)
	}
	return buf, fmt.Errorf("planvm: cannot encode kind %d", v.k)
}

func appendObject(buf []byte, v Value) ([]byte, error) {
	type member struct {
		key string
		val Value
	}
	// Keys are sorted by their JSON text when some are not strings (OPA
	// stringifies such keys); with only string keys the sorted order is the
	// cached one.
	order := v.c.sortedOrder()
	allStr := true
	for _, k := range v.c.elems {
		if k.k != KindString {
			allStr = false
			break
		}
	}
	buf = append(buf, '{')
	if allStr {
		for i, j := range order {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, v.c.elems[j].s)
			buf = append(buf, ':')
			var err error
			if buf, err = AppendJSON(buf, v.c.vals[j]); err != nil {
				return buf, err
			}
		}
		return append(buf, '}'), nil
	}
	ms := make([]member, 0, len(order))
	for _, j := range order {
		k := v.c.elems[j]
		ks := k.s
		if k.k != KindString {
			b, err := AppendJSON(nil, k)
			if err != nil {
				return buf, err
			}
			ks = string(b)
		}
		ms = append(ms, member{ks, v.c.vals[j]})
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i, m := range ms {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, m.key)
		buf = append(buf, ':')
		var err error
		if buf, err = AppendJSON(buf, m.val); err != nil {
			return buf, err
		}
	}
	return append(buf, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString escapes like encoding/json with HTML escaping on.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
