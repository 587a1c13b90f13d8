package matrix

import (
	"errors"
	"net/url"
	"strings"
)

// Errors of ParsePath. The filter answers each with 400 M_UNRECOGNIZED: no
// homeserver routes such a path to an endpoint, and a proxy in front of it
// (or Envoy's path normalisation) might resolve it to one the filter did not
// check.
var (
	ErrBadPath      = errors.New("matrix: request path is not an absolute path")
	ErrBadEscape    = errors.New("matrix: invalid percent-encoding in the request path")
	ErrDotSegment   = errors.New("matrix: dot segment in the request path")
	ErrEmptySegment = errors.New("matrix: empty segment in the request path")
	ErrLongPath     = errors.New("matrix: too many segments in the request path")
)

// MaxSegments bounds the segments of a path; no Matrix endpoint has more
// than 12.
const MaxSegments = 24

// Path is a request path split into segments before anything is decoded,
// as both reference homeservers route: Synapse matches its patterns
// ("[^/]*" per variable) against the raw path and decodes the variables
// afterwards; Dendrite's router runs with UseEncodedPath and SkipClean. So
// a "%2F" or "%3F" stays inside its segment, a literal segment only matches
// when it is spelled without escapes, and the filter decides on the very
// path it forwards.
type Path struct {
	Raw   string // the path without the query
	Query string // after the first "?", without it
	n     int
	seg   [MaxSegments]struct{ a, b int32 }
}

// ParsePath splits raw (the :path header) into segments. It refuses what a
// homeserver would route differently from a plain split: dot segments ("."
// or "..", escaped or not), empty segments ("//"; a trailing "/" is kept as
// a final empty segment, which some endpoints have), invalid escapes, a
// fragment, and more than MaxSegments segments.
func (p *Path) ParsePath(raw string) error {
	p.n, p.Query = 0, ""
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw, p.Query = raw[:i], raw[i+1:]
	}
	p.Raw = raw
	if len(raw) == 0 || raw[0] != '/' || strings.IndexByte(raw, '#') >= 0 {
		return ErrBadPath
	}
	escaped := strings.IndexByte(raw, '%') >= 0
	if escaped && !validEscapes(raw) {
		return ErrBadEscape
	}
	if len(raw) == 1 {
		return nil // "/": no segment
	}
	for a := 1; ; {
		b := a
		for b < len(raw) && raw[b] != '/' {
			b++
		}
		if a == b && b < len(raw) {
			return ErrEmptySegment
		}
		if p.n == MaxSegments {
			return ErrLongPath
		}
		if isDotSegment(raw[a:b], escaped) {
			return ErrDotSegment
		}
		p.seg[p.n].a, p.seg[p.n].b = int32(a), int32(b)
		p.n++
		if b == len(raw) {
			return nil
		}
		a = b + 1
	}
}

// Len is the number of segments.
func (p *Path) Len() int { return p.n }

// Seg returns segment i as sent (escapes not resolved).
func (p *Path) Seg(i int) string { return p.Raw[p.seg[i].a:p.seg[i].b] }

// Value returns segment i decoded, as a homeserver hands a path variable to
// its handler. Only segments with escapes are copied.
func (p *Path) Value(i int) string {
	s := p.Seg(i)
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	v, err := url.PathUnescape(s)
	if err != nil {
		return s // cannot happen: ParsePath checked the escapes
	}
	return v
}

// isDotSegment reports whether s decodes to "." or "..".
func isDotSegment(s string, escaped bool) bool {
	switch {
	case s == "." || s == "..":
		return true
	case !escaped || len(s) < 3 || len(s) > 6:
		return false
	}
	v, err := url.PathUnescape(s)
	return err == nil && (v == "." || v == "..")
}

// validEscapes reports whether every "%" starts an escape of two hex
// digits.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// QueryValues appends to dst the decoded values of the query parameters
// named name (decoded names compared), as Synapse's and Dendrite's query
// parsers read them: pairs separated by "&" only, "+" a space. A pair with
// an invalid escape or a ";" is an error: the two parsers disagree on it.
func QueryValues(dst []string, query, name string) ([]string, error) {
	for query != "" {
		var pair string
		if i := strings.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, ""
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return dst, ErrBadEscape
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return dst, ErrBadEscape
		}
		if k != name {
			continue
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return dst, ErrBadEscape
		}
		dst = append(dst, v)
	}
	return dst, nil
}
