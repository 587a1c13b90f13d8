package matrix

import "encoding/json"

// The encoding/json implementation that body.go replaced, kept as the oracle
// of the differential fuzz targets: the scanner must answer exactly as this
// code does (values, nil versus empty, error identity) for every body and
// route.

func oldInvitees(route Route, body []byte) ([]string, error) {
	switch route.Name {
	case RouteCreateRoom:
		fields, err := oldObjectFields(body)
		if err != nil {
			return nil, err
		}
		var ids []string
		if raw, ok := fields["invite"]; ok && !oldIsNull(raw) {
			if err := json.Unmarshal(raw, &ids); err != nil || ids == nil {
				return nil, ErrBadParam
			}
			for _, id := range ids {
				if _, _, err := ParseUserID(id); err != nil {
					return nil, ErrBadParam
				}
			}
		}
		if raw, ok := fields["invite_3pid"]; ok && !oldIsNull(raw) {
			var xs []json.RawMessage
			if json.Unmarshal(raw, &xs) != nil {
				return nil, ErrBadParam
			}
		}
		if raw, ok := fields["initial_state"]; ok && !oldIsNull(raw) {
			var evs []json.RawMessage
			if json.Unmarshal(raw, &evs) != nil || evs == nil {
				return nil, ErrBadParam
			}
			for _, ev := range evs {
				f, err := oldObjectFields(ev)
				if err != nil {
					return nil, ErrBadParam
				}
				var typ string
				if t, ok := f["type"]; !ok || json.Unmarshal(t, &typ) != nil || typ != "m.room.member" {
					continue
				}
				id, err := oldUserIDField(f, "state_key")
				if err != nil {
					return nil, err
				}
				if ids == nil {
					ids = []string{}
				}
				ids = append(ids, id)
			}
		}
		return ids, nil
	case RouteInvite:
		fields, err := oldObjectFields(body)
		if err != nil {
			return nil, err
		}
		if route.Member {
			var membership string
			raw, ok := fields["membership"]
			if !ok || json.Unmarshal(raw, &membership) != nil || oldIsNull(raw) {
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
		if _, ok := fields["user_id"]; !ok {
			return nil, nil
		}
		id, err := oldUserIDField(fields, "user_id")
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
func oldFederationInvite(route Route, body []byte) (inviter, invitee string, err error) {
	fields, err := oldObjectFields(body)
	if err != nil {
		return "", "", err
	}
	if route.Version != "v1" {
		raw, ok := fields["event"]
		if !ok {
			return "", "", ErrBadParam
		}
		if fields, err = oldObjectFields(raw); err != nil {
			return "", "", ErrBadParam
		}
	}
	if inviter, err = oldUserIDField(fields, "sender"); err != nil {
		return "", "", err
	}
	if invitee, err = oldUserIDField(fields, "state_key"); err != nil {
		return "", "", err
	}
	return inviter, invitee, nil
}

func oldObjectFields(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, ErrNotJSON
	}
	return m, nil
}

func oldUserIDField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok {
		return "", ErrBadParam
	}
	var id string
	if oldIsNull(raw) || json.Unmarshal(raw, &id) != nil {
		return "", ErrBadParam
	}
	if _, _, err := ParseUserID(id); err != nil {
		return "", ErrBadParam
	}
	return id, nil
}

func oldIsNull(raw json.RawMessage) bool {
	return string(raw) == "null"
}
