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
		if !validDNSOrIPv4(host) {
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

func validDNSOrIPv4(h string) bool {
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
func ParseUserID(s string) (localpart, server string, err error) {
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
	if _, _, err := ParseServerName(server); err != nil {
		return "", "", ErrBadUserID
	}
	return localpart, server, nil
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
	if id, ok = lastField(timUserAgent, true); ok {
		return id, true
	}
	if id, ok = lastField(tiUserAgent, true); ok {
		return id, true
	}
	return lastField(userAgent, false)
}

func lastField(v string, whole bool) (string, bool) {
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
