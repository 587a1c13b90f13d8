package matrix

import (
	"errors"
	"net/netip"
	"strings"
)

// Errors of the identifier parsers. Messages never contain the input, so
// that they can be logged without leaking user IDs.
var (
	ErrBadServerName = errors.New("matrix: invalid server name")
	ErrBadUserID     = errors.New("matrix: invalid user ID")
)

// MaxIDLength is the Matrix limit for server names and user IDs, in bytes.
const MaxIDLength = 255

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
func ParseServerName(s string) (host string, port int, err error) {
	if len(s) == 0 || len(s) > MaxIDLength {
		return "", 0, ErrBadServerName
	}
	i := 0 // end of the host
	if s[0] == '[' {
		i = strings.IndexByte(s, ']') + 1
		if i == 0 || i < len(s) && s[i] != ':' {
			return "", 0, ErrBadServerName
		}
		a, perr := netip.ParseAddr(s[1 : i-1])
		if perr != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, ErrBadServerName
		}
	} else {
		if i = strings.IndexByte(s, ':'); i < 0 {
			i = len(s)
		}
		numeric, ok := checkHost(s[:i])
		if !ok {
			return "", 0, ErrBadServerName
		}
		if numeric {
			// Only digits and dots: this must be an IPv4 address, never a
			// DNS name (no top-level domain is all digits).
			if a, err := netip.ParseAddr(s[:i]); err != nil || !a.Is4() {
				return "", 0, ErrBadServerName
			}
		}
	}
	if i < len(s) {
		p := s[i+1:]
		if len(p) == 0 || len(p) > 5 || p[0] == '0' {
			return "", 0, ErrBadServerName
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			if c < '0' || c > '9' {
				return "", 0, ErrBadServerName
			}
			port = port*10 + int(c-'0')
		}
		if port > 65535 {
			return "", 0, ErrBadServerName
		}
	}
	return s[:i], port, nil
}

// checkHost checks a DNS name or dotted-decimal host: dns-chars only, no
// empty label, labels of at most 63 bytes. numeric tells that it holds only
// digits and dots.
func checkHost(h string) (numeric, ok bool) {
	if 8 <= len(h) && len(h) <= 63 {
		// No label can exceed 63 bytes here, so only the characters and
		// empty labels need checking: a word at a time, the words seven
		// bytes apart so that every pair of neighbours shares a word
		// (".." is an empty label).
		if h[0] == '.' || h[len(h)-1] == '.' {
			return false, false
		}
		var bad, alpha uint64
		for j := 0; ; j += 7 {
			if j > len(h)-8 {
				j = len(h) - 8
			}
			// Per-byte classes (see above/below in word.go); bytes with
			// the high bit set are no dns-char.
			x := load8(h, j)
			b7 := x &^ highs
			digit := above(b7, '0'-1) & below(b7, '9'+1)
			letter := above(b7, 'A'-1)&below(b7, 'Z'+1) | above(b7, 'a'-1)&below(b7, 'z'+1) |
				above(b7, '-'-1)&below(b7, '-'+1)
			dots := above(b7, '.'-1) & below(b7, '.'+1)
			bad |= highs&^((digit|letter|dots)&^x) | dots&(dots<<8)
			alpha |= letter
			if j == len(h)-8 {
				break
			}
		}
		return alpha == 0, bad == 0
	}
	return checkHostBytes(h)
}

// checkHostBytes is checkHost byte by byte, for short and long names.
func checkHostBytes(h string) (numeric, ok bool) {
	numeric = true
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false, false
			}
			label = 0
			continue
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			numeric = false
		default:
			return false, false
		}
		label++
		if label > 63 {
			return false, false
		}
	}
	return numeric, label > 0
}

// ParseUserID splits a Matrix user ID "@localpart:server_name". The localpart
// may use the historical character set (any printable ASCII except ':'), as
// homeservers still carry such IDs; the server name is checked with
// ParseServerName; the whole ID is at most 255 bytes.
func ParseUserID(s string) (localpart, server string, err error) {
	if len(s) < 4 || len(s) > MaxIDLength || s[0] != '@' {
		return "", "", ErrBadUserID
	}
	i := strings.IndexByte(s, ':')
	if i < 2 || !printableASCII(s[1:i]) {
		return "", "", ErrBadUserID
	}
	if _, _, err := ParseServerName(s[i+1:]); err != nil {
		return "", "", ErrBadUserID
	}
	return s[1:i], s[i+1:], nil
}

// printableASCII reports whether s holds only 0x21..0x7e, a word at a time.
func printableASCII(s string) bool {
	if len(s) < 8 {
		for j := 0; j < len(s); j++ {
			if c := s[j]; c < 0x21 || c > 0x7e {
				return false
			}
		}
		return true
	}
	for j := 0; ; j += 8 {
		if j > len(s)-8 {
			j = len(s) - 8
		}
		if x := load8(s, j); x&highs != 0 || hasLess(x, 0x21) || hasByte(x, 0x7f) {
			return false
		}
		if j == len(s)-8 {
			return true
		}
	}
}

// MaxClientIDLength bounds a client id taken from a header.
const MaxClientIDLength = 128

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
func ClientID(userAgent, timUserAgent, tiUserAgent string) (id string, ok bool) {
	if timUserAgent != "" {
		if id, ok = lastField(timUserAgent, true); ok {
			return id, true
		}
	}
	if tiUserAgent != "" {
		if id, ok = lastField(tiUserAgent, true); ok {
			return id, true
		}
	}
	return lastField(userAgent, false)
}

// lastField returns the last comma-separated field of v, trimmed, if it is a
// valid client id. One backward pass finds the comma and checks the
// characters (calls and extra passes are costly in Wasm): a byte that is
// never allowed ends it at once, a tab is allowed only among the spaces
// trimmed from the start.
func lastField(v string, whole bool) (string, bool) {
	end := len(v)
	for end > 0 && (v[end-1] == ' ' || v[end-1] == '\t') {
		end--
	}
	start := end
	tab, comma := false, false
	for start > 0 && !comma {
		// Eight printable, comma-free bytes at a time; a word with
		// anything else is read byte by byte.
		stop := 0
		if start >= 8 {
			x := load8(v, start-8)
			if x&highs == 0 && !hasLess(x, 0x20) && !hasByte(x, ',') && !hasByte(x, 0x7f) {
				start -= 8
				continue
			}
			stop = start - 8
		}
		for ; start > stop; start-- {
			c := v[start-1]
			if c == ',' {
				comma = true
				break
			}
			if c < 0x20 || c > 0x7e {
				if c != '\t' {
					return "", false
				}
				tab = true
			}
		}
	}
	if !comma && !whole {
		return "", false // an ordinary user agent
	}
	for start < end && (v[start] == ' ' || v[start] == '\t') {
		start++
	}
	if start == end || end-start > MaxClientIDLength {
		return "", false
	}
	if tab {
		for j := start; j < end; j++ {
			if v[j] == '\t' {
				return "", false
			}
		}
	}
	return v[start:end], true
}

// ServerDomain returns the domain of a server name: its host, lower-cased,
// without port; the key under which the federation list, own domains and
// the control plane's lookups compare server names. ok is false when s is
// not a server name. The one comparison of server names everywhere (filter
// and control plane), so that a name with a port or in capitals is the same
// domain to every check.
func ServerDomain(s string) (domain string, ok bool) {
	host, _, err := ParseServerName(s)
	if err != nil {
		return "", false
	}
	return lowerASCII(host), true
}

// UserDomain returns the domain (ServerDomain) of a user ID's server name.
func UserDomain(mxid string) (domain string, ok bool) {
	_, server, err := ParseUserID(mxid)
	if err != nil {
		return "", false
	}
	return ServerDomain(server)
}
