package matrix

import (
	"encoding/json"
	"errors"
)

var (
	// ErrNotJSON: the body is not a JSON object (answer 400 M_NOT_JSON).
	ErrNotJSON = errors.New("matrix: body is not a JSON object")
	// ErrBadParam: a field has the wrong type or is not a valid user ID
	// (answer 400 M_INVALID_PARAM).
	ErrBadParam = errors.New("matrix: invalid parameter in body")
)

// Bodies are decoded into map[string]json.RawMessage rather than structs:
// encoding/json matches struct fields case-insensitively, so a body carrying
// both "invite" and "Invite" would show the proxy one list and the
// homeserver (which matches exactly) the other. Map keys match exactly, and
// for a repeated key the last one wins, as in the homeservers' JSON parsers.

// Invitees returns the user IDs a request invites, in body order: the
// "invite" array of createRoom (absent or null: none), the "user_id" of a
// client-server invite (required: third-party invites are not part of the
// TI-Messenger), or, for a membership event sent to the state endpoint
// (route.StateKey set), the state key when the body's "membership" is
// "invite" (other memberships invite nobody). Other routes have none. Every
// ID is checked with ParseUserID.
func Invitees(route Route, body []byte) ([]string, error) {
	switch route.Name {
	case RouteCreateRoom:
		fields, err := objectFields(body)
		if err != nil {
			return nil, err
		}
		raw, ok := fields["invite"]
		if !ok || isNull(raw) {
			return nil, nil
		}
		var ids []string
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, ErrBadParam
		}
		for _, id := range ids {
			if _, _, err := ParseUserID(id); err != nil {
				return nil, ErrBadParam
			}
		}
		return ids, nil
	case RouteInvite:
		fields, err := objectFields(body)
		if err != nil {
			return nil, err
		}
		if route.StateKey != "" {
			var membership string
			raw, ok := fields["membership"]
			if !ok || json.Unmarshal(raw, &membership) != nil || isNull(raw) {
				return nil, ErrBadParam
			}
			if membership != "invite" {
				return nil, nil
			}
			if _, _, err := ParseUserID(route.StateKey); err != nil {
				return nil, ErrBadParam
			}
			return []string{route.StateKey}, nil
		}
		id, err := userIDField(fields, "user_id")
		if err != nil {
			return nil, err
		}
		return []string{id}, nil
	}
	return nil, nil
}

// FederationInvite returns sender (inviter) and state_key (invitee) of the
// invite event of a server-server invite: the body itself for /v1/invite, the
// "event" member for /v2/invite (route.Version tells which). Both must be
// valid user IDs.
func FederationInvite(route Route, body []byte) (inviter, invitee string, err error) {
	fields, err := objectFields(body)
	if err != nil {
		return "", "", err
	}
	if route.Version != "v1" {
		raw, ok := fields["event"]
		if !ok {
			return "", "", ErrBadParam
		}
		if fields, err = objectFields(raw); err != nil {
			return "", "", ErrBadParam
		}
	}
	if inviter, err = userIDField(fields, "sender"); err != nil {
		return "", "", err
	}
	if invitee, err = userIDField(fields, "state_key"); err != nil {
		return "", "", err
	}
	return inviter, invitee, nil
}

func objectFields(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, ErrNotJSON
	}
	return m, nil
}

func userIDField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok {
		return "", ErrBadParam
	}
	var id string
	if isNull(raw) || json.Unmarshal(raw, &id) != nil {
		return "", ErrBadParam
	}
	if _, _, err := ParseUserID(id); err != nil {
		return "", ErrBadParam
	}
	return id, nil
}

func isNull(raw json.RawMessage) bool {
	return string(raw) == "null"
}
