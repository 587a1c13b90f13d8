package matrix

// The header-fact parsers as they were before the rewrite for speed in Wasm,
// kept as the oracle of the differential fuzz targets (facts_diff_test.go):
// the new code must answer exactly as this code does for every input.

import (
	"net/netip"
	"strings"
)

// isVersion accepts the client-server prefixes r0, unstable and v<digits>.
func oldIsVersion(v string) bool {
	if v == "r0" || v == "unstable" {
		return true
	}
	if len(v) < 2 || v[0] != 'v' {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// nextSeg returns the next non-empty path segment and the remainder.
func oldNextSeg(p string) (seg, rest string) {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// lastSeg returns the last non-empty segment of p.
func oldLastSeg(p string) string {
	p = strings.TrimRight(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// end reports whether only slashes remain.
func oldEnd(rest string) bool {
	for i := 0; i < len(rest); i++ {
		if rest[i] != '/' {
			return false
		}
	}
	return true
}

// ParseServerName splits a Matrix server name (hostname [":" port]) into host
// and port (0 when absent). The host is a DNS name, an IPv4 address or an
// IPv6 literal in brackets (returned with its brackets, as it appears in the
// server name). The host is returned as written; compare it lower-cased.
//
// Beyond the grammar of the specification (dns-char = ALPHA / DIGIT / "-" /
// "."), empty labels, labels over 63 characters, dotted-decimal names that
// are not valid IPv4 addresses, IPv6 zones, ports outside 1..65535 and ports
// with leading zeros are rejected: none of them names a homeserver, and
// each server name then has exactly one spelling of its port.
func oldParseServerName(s string) (host string, port int, err error) {
	if len(s) == 0 || len(s) > MaxIDLength {
		return "", 0, ErrBadServerName
	}
	portPart, hasPort := "", false
	if s[0] == '[' {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return "", 0, ErrBadServerName
		}
		host = s[:i+1]
		switch rest := s[i+1:]; {
		case rest == "":
		case rest[0] == ':':
			portPart, hasPort = rest[1:], true
		default:
			return "", 0, ErrBadServerName
		}
		a, perr := netip.ParseAddr(s[1:i])
		if perr != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, ErrBadServerName
		}
	} else {
		host = s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, portPart, hasPort = s[:i], s[i+1:], true
		}
		if !oldValidDNSOrIPv4(host) {
			return "", 0, ErrBadServerName
		}
	}
	if hasPort {
		if len(portPart) == 0 || len(portPart) > 5 || portPart[0] == '0' {
			return "", 0, ErrBadServerName
		}
		for i := 0; i < len(portPart); i++ {
			c := portPart[i]
			if c < '0' || c > '9' {
				return "", 0, ErrBadServerName
			}
			port = port*10 + int(c-'0')
		}
		if port < 1 || port > 65535 {
			return "", 0, ErrBadServerName
		}
	}
	return host, port, nil
}

func oldValidDNSOrIPv4(h string) bool {
	if h == "" {
		return false
	}
	numeric := true
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			numeric = false
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	if label == 0 {
		return false
	}
	if numeric {
		// Only digits and dots: this must be an IPv4 address, never a
		// DNS name (no top-level domain is all digits).
		a, err := netip.ParseAddr(h)
		return err == nil && a.Is4()
	}
	return true
}

// ParseUserID splits a Matrix user ID "@localpart:server_name". The localpart
// may use the historical character set (any printable ASCII except ':'), as
// homeservers still carry such IDs; the server name is checked with
// ParseServerName; the whole ID is at most 255 bytes.
func oldParseUserID(s string) (localpart, server string, err error) {
	if len(s) < 4 || len(s) > MaxIDLength || s[0] != '@' {
		return "", "", ErrBadUserID
	}
	i := strings.IndexByte(s, ':')
	if i < 2 {
		return "", "", ErrBadUserID
	}
	localpart, server = s[1:i], s[i+1:]
	for j := 0; j < len(localpart); j++ {
		if c := localpart[j]; c < 0x21 || c > 0x7e {
			return "", "", ErrBadUserID
		}
	}
	if _, _, err := oldParseServerName(server); err != nil {
		return "", "", ErrBadUserID
	}
	return localpart, server, nil
}

// ClientID finds the TI-Messenger client id of a request (gemSpec
// TI-Messenger-FD 5.1.2.1.2, A_23104-01).
//
// Precedence: X-TIM-User-Agent, then TI-User-Agent, then User-Agent. The two
// dedicated headers exist because browsers do not let a web client set
// User-Agent; when a client sends one of them, it is the deliberate statement
// and wins over a User-Agent that the platform may have filled in.
//
// Format: the client id is the last comma-separated field of the header
// value, trimmed of spaces and tabs. A dedicated header without a comma is
// taken whole (it carries nothing but the id). A User-Agent without a comma is
// an ordinary user agent and names no client id. The id must be 1..128
// printable ASCII characters; a header whose id does not qualify counts as
// absent and the next one is tried.
func oldClientID(userAgent, timUserAgent, tiUserAgent string) (id string, ok bool) {
	if id, ok = oldLastField(timUserAgent, true); ok {
		return id, true
	}
	if id, ok = oldLastField(tiUserAgent, true); ok {
		return id, true
	}
	return oldLastField(userAgent, false)
}

func oldLastField(v string, whole bool) (string, bool) {
	i := strings.LastIndexByte(v, ',')
	if i < 0 && !whole {
		return "", false
	}
	f := strings.Trim(v[i+1:], " \t")
	if len(f) == 0 || len(f) > MaxClientIDLength {
		return "", false
	}
	for j := 0; j < len(f); j++ {
		if c := f[j]; c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	return f, true
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
func oldParseXMatrix(authorizationValues []string) (XMatrix, error) {
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
		x, err := oldParseXMatrixParams(v[i+1:])
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

func oldParseXMatrixParams(p string) (XMatrix, error) {
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
		if !oldIsToken(name) {
			return XMatrix{}, ErrBadXMatrix
		}
		p = strings.TrimLeft(p[eq+1:], " \t")
		var val string
		var err error
		val, p, err = oldParamValue(p)
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
	if _, _, err := oldParseServerName(x.Origin); err != nil {
		return XMatrix{}, ErrBadXMatrix
	}
	if seen[1] {
		if _, _, err := oldParseServerName(x.Destination); err != nil {
			return XMatrix{}, ErrBadXMatrix
		}
	}
	x.Origin = strings.ToLower(x.Origin)
	x.Destination = strings.ToLower(x.Destination)
	return x, nil
}

// paramValue reads a quoted string or an unquoted value from the start of p.
func oldParamValue(p string) (val, rest string, err error) {
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

func oldIsToken(s string) bool {
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
