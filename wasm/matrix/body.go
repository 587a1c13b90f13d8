package matrix

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

var (
	// ErrNotJSON: the body is not a JSON object (answer 400 M_NOT_JSON).
	ErrNotJSON = errors.New("matrix: body is not a JSON object")
	// ErrBadParam: a field has the wrong type or is not a valid user ID
	// (answer 400 M_INVALID_PARAM).
	ErrBadParam = errors.New("matrix: invalid parameter in body")
)

// Bodies are read by a single-pass scanner (scan.go) that validates the whole
// body and keeps only the byte ranges of the top-level members asked for.
// Keys are compared exactly, after unescaping: encoding/json's struct
// decoding matches case-insensitively, so a body carrying both "invite" and
// "Invite" would show the proxy one list and the homeserver (which matches
// exactly) the other. For a repeated key the last one wins, as in the
// homeservers' JSON parsers. The scanner answers exactly as decoding into
// map[string]json.RawMessage did (body_oracle_test.go holds that code; the
// differential fuzz targets compare the two).

var (
	keysCreateRoom  = []string{"invite", "invite_3pid", "initial_state"}
	keysInvite      = []string{"user_id", "medium", "address"}
	keysMembership  = []string{"membership"}
	keysV2Invite    = []string{"event"}
	keysEvent       = []string{"sender", "state_key"}
	keysMemberEvent = []string{"type", "state_key"}
)

// Invitees returns the user IDs a request makes members of a room, in body
// order, and whether it invites by third-party identifier (e-mail or phone
// number, which the TI-Messenger does not support):
//   - createRoom: the "invite" array (absent or null: none), then the state
//     key of every m.room.member event in "initial_state" (whatever its
//     membership: a room's initial state names no other member legitimately);
//     a non-empty "invite_3pid" is a third-party invite;
//   - a client-server invite: its "user_id"; without one, a body with
//     "medium" or "address" is a third-party invite, anything else invites
//     nobody (the policy refuses both);
//   - a membership event sent to the state endpoint (route.Member): the state
//     key when the body's "membership" is "invite" (other memberships invite
//     nobody).
//
// Other routes have none. Every ID is checked with ParseUserID. An ID
// without escapes is a view of body (no copy of a user ID outlives the
// caller's buffer): body must not change while the IDs are in use.
func Invitees(route Route, body []byte) (ids []string, thirdParty bool, err error) {
	var found [3]span
	switch route.Name {
	case RouteCreateRoom:
		if err := objectMembers(body, keysCreateRoom, found[:]); err != nil {
			return nil, false, err
		}
		if raw, ok := found[0].of(body); ok && !isNull(raw) {
			if ids, err = userIDArray(raw); err != nil {
				return nil, false, err
			}
		}
		if raw, ok := found[1].of(body); ok && !isNull(raw) {
			if raw[0] != '[' {
				return nil, false, ErrBadParam
			}
			thirdParty = raw[skipSpace(raw, 1)] != ']'
		}
		if raw, ok := found[2].of(body); ok && !isNull(raw) {
			if ids, err = memberStateKeys(ids, raw); err != nil {
				return nil, false, err
			}
		}
		return ids, thirdParty, nil
	case RouteInvite:
		if route.Member {
			if err := objectMembers(body, keysMembership, found[:]); err != nil {
				return nil, false, err
			}
			raw, ok := found[0].of(body)
			if !ok || raw[0] != '"' {
				return nil, false, ErrBadParam
			}
			if !unquotedEquals(raw[1:len(raw)-1], "invite") {
				return nil, false, nil
			}
			if _, _, err := ParseUserID(route.StateKey); err != nil {
				return nil, false, ErrBadParam
			}
			return []string{route.StateKey}, false, nil
		}
		if err := objectMembers(body, keysInvite, found[:]); err != nil {
			return nil, false, err
		}
		if found[0].end == 0 {
			return nil, found[1].end != 0 || found[2].end != 0, nil
		}
		id, err := userIDValue(found[0].of(body))
		if err != nil {
			return nil, false, err
		}
		return []string{id}, false, nil
	}
	return nil, false, nil
}

// memberStateKeys appends the state keys of the m.room.member events of a
// validated initial_state array; every element must be an object, and a
// member event's state key a valid user ID.
func memberStateKeys(ids []string, raw []byte) ([]string, error) {
	if raw[0] != '[' {
		return nil, ErrBadParam
	}
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return ids, nil
	}
	for {
		end := skipValue(raw, i)
		ev := raw[i:end]
		var found [2]span
		if objectMembers(ev, keysMemberEvent, found[:]) != nil {
			return nil, ErrBadParam
		}
		if t, ok := found[0].of(ev); ok && t[0] == '"' && unquotedEquals(t[1:len(t)-1], "m.room.member") {
			id, err := userIDValue(found[1].of(ev))
			if err != nil {
				return nil, err
			}
			if ids == nil {
				ids = []string{}
			}
			ids = append(ids, id)
		}
		i = skipSpace(raw, end)
		if raw[i] == ']' {
			return ids, nil
		}
		i = skipSpace(raw, i+1) // the ','
	}
}

// skipValue returns the end of the validated JSON value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, _ := scanString(b, i)
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != ']' && b[i] != '}' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// FederationInvite returns sender (inviter) and state_key (invitee) of the
// invite event of a server-server invite: the body itself for /v1/invite, the
// "event" member for /v2/invite (route.Version tells which). Both must be
// valid user IDs. As with Invitees, they may be views of body.
func FederationInvite(route Route, body []byte) (inviter, invitee string, err error) {
	var found [2]span
	event := body
	if route.Version != "v1" {
		if err := objectMembers(body, keysV2Invite, found[:]); err != nil {
			return "", "", err
		}
		raw, ok := found[0].of(body)
		if !ok {
			return "", "", ErrBadParam
		}
		event, found = raw, [2]span{}
		if objectMembers(event, keysEvent, found[:]) != nil {
			return "", "", ErrBadParam
		}
	} else if err := objectMembers(body, keysEvent, found[:]); err != nil {
		return "", "", err
	}
	if inviter, err = userIDValue(found[0].of(event)); err != nil {
		return "", "", err
	}
	if invitee, err = userIDValue(found[1].of(event)); err != nil {
		return "", "", err
	}
	return inviter, invitee, nil
}

// userIDValue reads a member value that must be a string holding a valid
// user ID (absent, null and other types are ErrBadParam).
func userIDValue(raw []byte, ok bool) (string, error) {
	if !ok || raw[0] != '"' {
		return "", ErrBadParam
	}
	id := unquote(raw[1 : len(raw)-1])
	if _, _, err := ParseUserID(id); err != nil {
		return "", ErrBadParam
	}
	return id, nil
}

// userIDArray reads a validated value that must be an array of strings, each
// a valid user ID. A null element counts as the empty string (as
// encoding/json decodes it), which is no user ID either.
func userIDArray(raw []byte) ([]string, error) {
	if raw[0] != '[' {
		return nil, ErrBadParam
	}
	ids := []string{}
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return ids, nil
	}
	for {
		if raw[i] != '"' {
			return nil, ErrBadParam
		}
		end, ok := scanString(raw, i)
		if !ok {
			return nil, ErrBadParam // cannot happen: raw was validated
		}
		id := unquote(raw[i+1 : end-1])
		if _, _, err := ParseUserID(id); err != nil {
			return nil, ErrBadParam
		}
		ids = append(ids, id)
		i = skipSpace(raw, end)
		if raw[i] == ']' {
			return ids, nil
		}
		i = skipSpace(raw, i+1) // the ','
	}
}

func isNull(raw []byte) bool {
	return string(raw) == "null"
}

// unquote returns the text of validated string contents (without the
// quotes), exactly as encoding/json decodes it: escapes resolved, a valid
// surrogate pair joined, a lone surrogate and every byte of invalid UTF-8
// replaced by U+FFFD. Contents without escapes or invalid UTF-8, every
// user ID in practice, are returned as a view of s.
func unquote(s []byte) string {
	r := 0
	// Eight bytes at a time while all are ASCII and none is a backslash.
	for r+8 <= len(s) {
		if x := load8(bytesString(s), r); x&highs != 0 || hasByte(x, '\\') {
			break
		}
		r += 8
	}
	for r < len(s) {
		c := s[r]
		if c == '\\' {
			break
		}
		if c < utf8.RuneSelf {
			r++
			continue
		}
		rr, size := utf8.DecodeRune(s[r:])
		if rr == utf8.RuneError && size == 1 {
			break
		}
		r += size
	}
	if r == len(s) {
		return bytesString(s)
	}
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	b = append(b, s[:r]...)
	for r < len(s) {
		c := s[r]
		switch {
		case c == '\\':
			e := s[r+1]
			if e == 'u' {
				rr := hex4(s[r+2 : r+6])
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						rr1 = hex4(s[r+2 : r+6])
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
						r += 6
						rr = dec
					} else {
						rr = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, rr)
				continue
			}
			b = append(b, escaped(e))
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return string(b)
}

// unquotedEquals reports whether validated string contents decode to the
// ASCII text want, without building the string. A non-ASCII byte or a \u
// escape above U+007F decodes to a non-ASCII rune (or U+FFFD), which never
// equals ASCII text.
func unquotedEquals(s []byte, want string) bool {
	j := 0
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c >= utf8.RuneSelf:
			return false
		case c == '\\' && s[r+1] == 'u':
			v := hex4(s[r+2 : r+6])
			if v >= utf8.RuneSelf {
				return false
			}
			c = byte(v)
			r += 6
		case c == '\\':
			c = escaped(s[r+1])
			r += 2
		default:
			r++
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// escaped resolves a validated one-character escape.
func escaped(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // '"', '\\', '/'
}

// hex4 reads four validated hex digits.
func hex4(h []byte) rune {
	var v rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | rune(c)
	}
	return v
}
