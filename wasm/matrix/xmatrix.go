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
	var out XMatrix
	found := false
	for _, v := range authorizationValues {
		if len(v) > MaxAuthorizationLength {
			return XMatrix{}, ErrBadXMatrix
		}
		v = strings.TrimLeft(v, " \t")
		i := strings.IndexAny(v, " \t")
		if i < 0 || !strings.EqualFold(v[:i], "X-Matrix") {
			continue
		}
		x, err := parseXMatrixParams(v[i+1:])
		if err != nil {
			return XMatrix{}, err
		}
		if found && (x.Origin != out.Origin || x.Destination != out.Destination) {
			return XMatrix{}, ErrBadXMatrix
		}
		if !found {
			out, found = x, true
		}
	}
	if !found {
		return XMatrix{}, ErrNoXMatrix
	}
	return out, nil
}

func parseXMatrixParams(p string) (XMatrix, error) {
	var x XMatrix
	var seen [4]bool
	for {
		p = strings.TrimLeft(p, " \t,")
		if p == "" {
			break
		}
		eq := strings.IndexByte(p, '=')
		if eq <= 0 {
			return XMatrix{}, ErrBadXMatrix
		}
		name := strings.TrimRight(p[:eq], " \t")
		if !isToken(name) {
			return XMatrix{}, ErrBadXMatrix
		}
		p = strings.TrimLeft(p[eq+1:], " \t")
		var val string
		var err error
		val, p, err = paramValue(p)
		if err != nil {
			return XMatrix{}, err
		}
		p = strings.TrimLeft(p, " \t")
		if p != "" && p[0] != ',' {
			return XMatrix{}, ErrBadXMatrix
		}
		var dst *string
		var idx int
		switch {
		case strings.EqualFold(name, "origin"):
			dst, idx = &x.Origin, 0
		case strings.EqualFold(name, "destination"):
			dst, idx = &x.Destination, 1
		case strings.EqualFold(name, "key"):
			dst, idx = &x.Key, 2
		case strings.EqualFold(name, "sig"):
			dst, idx = &x.Sig, 3
		default:
			continue
		}
		if seen[idx] {
			// Homeservers differ on which duplicate wins; refuse.
			return XMatrix{}, ErrBadXMatrix
		}
		seen[idx] = true
		*dst = val
	}
	if x.Origin == "" {
		return XMatrix{}, ErrBadXMatrix
	}
	if _, _, err := ParseServerName(x.Origin); err != nil {
		return XMatrix{}, ErrBadXMatrix
	}
	if seen[1] {
		if _, _, err := ParseServerName(x.Destination); err != nil {
			return XMatrix{}, ErrBadXMatrix
		}
	}
	x.Origin = strings.ToLower(x.Origin)
	x.Destination = strings.ToLower(x.Destination)
	return x, nil
}

// paramValue reads a quoted string or an unquoted value from the start of p.
func paramValue(p string) (val, rest string, err error) {
	if p == "" {
		return "", "", ErrBadXMatrix
	}
	if p[0] != '"' {
		// Unquoted: up to the next separator. Wider than an RFC 9110
		// token because server names with ports (":") are sent unquoted.
		i := 0
		for i < len(p) {
			c := p[i]
			if c == ',' || c == ' ' || c == '\t' {
				break
			}
			if c == '"' || c < 0x21 || c == 0x7f {
				return "", "", ErrBadXMatrix
			}
			i++
		}
		if i == 0 {
			return "", "", ErrBadXMatrix
		}
		return p[:i], p[i:], nil
	}
	// Quoted string; allocate only when it contains escapes.
	var b *strings.Builder
	start := 1
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '"':
			if b == nil {
				return p[1:i], p[i+1:], nil
			}
			b.WriteString(p[start:i])
			return b.String(), p[i+1:], nil
		case c == '\\':
			if i+1 >= len(p) || p[i+1] < 0x20 || p[i+1] == 0x7f {
				return "", "", ErrBadXMatrix
			}
			if b == nil {
				b = &strings.Builder{}
			}
			b.WriteString(p[start:i])
			b.WriteByte(p[i+1])
			i++
			start = i + 1
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return "", "", ErrBadXMatrix
		}
	}
	return "", "", ErrBadXMatrix // unterminated
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
