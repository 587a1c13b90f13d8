package matrix

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestInvitees(t *testing.T) {
	createRoom := testRoute("POST", "/_matrix/client/v3/createRoom")
	invite := testRoute("POST", "/_matrix/client/v3/rooms/!r:x.de/invite")
	member := testRoute("PUT", "/_matrix/client/v3/rooms/!r:x.de/state/m.room.member/@bob:b.de")
	badMember := testRoute("PUT", "/_matrix/client/v3/rooms/!r:x.de/state/m.room.member/bob")
	for _, c := range []struct {
		name  string
		route Route
		body  string
		want  []string
		err   error
	}{
		{"createRoom one invitee", createRoom, `{"preset":"private_chat","invite":["@bob:b.de"],"is_direct":true}`, []string{"@bob:b.de"}, nil},
		{"createRoom several, body order", createRoom, `{"invite":["@b:b.de","@a:a.de:8448"]}`, []string{"@b:b.de", "@a:a.de:8448"}, nil},
		{"createRoom no invite", createRoom, `{"name":"x"}`, nil, nil},
		{"createRoom invite null", createRoom, `{"invite":null}`, nil, nil},
		{"createRoom empty invite", createRoom, `{"invite":[]}`, []string{}, nil},
		{"createRoom exact key only", createRoom, `{"Invite":["@x:x.de"],"invite":["@bob:b.de"],"INVITE":["@y:y.de"]}`, []string{"@bob:b.de"}, nil},
		{"createRoom repeated key: last wins", createRoom, `{"invite":["@x:x.de"],"invite":["@bob:b.de"]}`, []string{"@bob:b.de"}, nil},
		{"createRoom invite not an array", createRoom, `{"invite":"@bob:b.de"}`, nil, ErrBadParam},
		{"createRoom element not a string", createRoom, `{"invite":["@bob:b.de",7]}`, nil, ErrBadParam},
		{"createRoom null element", createRoom, `{"invite":[null]}`, nil, ErrBadParam},
		{"createRoom invalid MXID", createRoom, `{"invite":["bob@b.de"]}`, nil, ErrBadParam},
		{"createRoom invalid server", createRoom, `{"invite":["@bob:b_d.de"]}`, nil, ErrBadParam},
		{"createRoom malformed JSON", createRoom, `{"invite":["@bob:b.de"]`, nil, ErrNotJSON},
		{"createRoom not an object", createRoom, `["@bob:b.de"]`, nil, ErrNotJSON},
		{"createRoom null body", createRoom, `null`, nil, ErrNotJSON},
		{"createRoom empty body", createRoom, ``, nil, ErrNotJSON},
		{"createRoom trailing garbage", createRoom, `{"invite":[]}x`, nil, ErrNotJSON},
		{"createRoom key compared unescaped", createRoom, `{"\u0069nvite":["\u0040bob:b.de"]}`, []string{"@bob:b.de"}, nil},
		{"createRoom escaped other key", createRoom, `{"invite\u0000":["@x:x.de"],"invite":[]}`, []string{}, nil},
		{"createRoom surrogate pair in ID", createRoom, `{"invite":["@\ud83d\ude00:b.de"]}`, nil, ErrBadParam},
		{"createRoom invalid UTF-8 elsewhere tolerated", createRoom, "{\"name\":\"\xff\",\"invite\":[\"@bob:b.de\"]}", []string{"@bob:b.de"}, nil},
		{"createRoom byte order mark", createRoom, "\ufeff{\"invite\":[]}", nil, ErrNotJSON},
		{"createRoom control character in string", createRoom, "{\"name\":\"\x01\"}", nil, ErrNotJSON},
		{"createRoom leading zero", createRoom, `{"n":01,"invite":[]}`, nil, ErrNotJSON},
		{"createRoom nesting 10000 accepted", createRoom, `{"invite":["@bob:b.de"],"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`, []string{"@bob:b.de"}, nil},
		{"createRoom nesting 10001 refused", createRoom, `{"invite":["@bob:b.de"],"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, nil, ErrNotJSON},
		{"createRoom mismatched brackets", createRoom, `{"x":[}`, nil, ErrNotJSON},

		{"invite user_id", invite, `{"user_id":"@bob:b.de","reason":"hi"}`, []string{"@bob:b.de"}, nil},
		{"invite missing user_id (3pid)", invite, `{"id_server":"i.de","medium":"email","address":"a@b.de"}`, nil, nil}, // a third-party invite: no invitee, which the policy refuses
		{"invite user_id null", invite, `{"user_id":null}`, nil, ErrBadParam},
		{"invite user_id number", invite, `{"user_id":1}`, nil, ErrBadParam},
		{"invite user_id invalid", invite, `{"user_id":"@bob"}`, nil, ErrBadParam},
		{"invite user_id other case ignored", invite, `{"USER_ID":"@bob:b.de"}`, nil, nil}, // no invitee: refused by the policy
		{"invite malformed", invite, `{user_id:"@bob:b.de"}`, nil, ErrNotJSON},

		{"membership invite via state", member, `{"membership":"invite"}`, []string{"@bob:b.de"}, nil},
		{"membership leave via state", member, `{"membership":"leave"}`, nil, nil},
		{"membership missing", member, `{"displayname":"x"}`, nil, ErrBadParam},
		{"membership not a string", member, `{"membership":["invite"]}`, nil, ErrBadParam},
		{"membership invite, invalid state key", badMember, `{"membership":"invite"}`, nil, ErrBadParam},
		{"membership malformed", member, `{"membership":`, nil, ErrNotJSON},
		{"membership escaped invite", member, `{"membership":"\u0069nvite"}`, []string{"@bob:b.de"}, nil},
		{"membership repeated: last wins", member, `{"membership":"invite","membership":"leave"}`, nil, nil},
		{"membership null", member, `{"membership":null}`, nil, ErrBadParam},

		{"other route has none", testRoute("GET", "/_matrix/client/v3/sync"), `not json`, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Invitees(c.route, []byte(c.body))
			if c.err != nil {
				if !errors.Is(err, c.err) || got != nil {
					t.Fatalf("Invitees = %q, %v; want %v", got, err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Invitees = %#v, %v; want %#v", got, err, c.want)
			}
		})
	}
}

func TestFederationInvite(t *testing.T) {
	v1 := testRoute("PUT", "/_matrix/federation/v1/invite/!r:x.de/$e")
	v2 := testRoute("PUT", "/_matrix/federation/v2/invite/!r:x.de/$e")
	const event = `{"type":"m.room.member","sender":"@alice:a.de","state_key":"@bob:b.de","content":{"membership":"invite"}}`
	for _, c := range []struct {
		name             string
		route            Route
		body             string
		inviter, invitee string
		err              error
	}{
		{"v1 event is the body", v1, event, "@alice:a.de", "@bob:b.de", nil},
		{"v2 event member", v2, `{"room_version":"10","event":` + event + `,"invite_room_state":[]}`, "@alice:a.de", "@bob:b.de", nil},
		{"v2 ignores top-level sender", v2, `{"sender":"@mallory:m.de","state_key":"@x:x.de","event":` + event + `}`, "@alice:a.de", "@bob:b.de", nil},
		{"v1 ignores an event member", v1, `{"sender":"@alice:a.de","state_key":"@bob:b.de","event":{"sender":"@m:m.de","state_key":"@x:x.de"}}`, "@alice:a.de", "@bob:b.de", nil},
		{"v2 without event", v2, event, "", "", ErrBadParam},
		{"v2 event not an object", v2, `{"event":"x"}`, "", "", ErrBadParam},
		{"v2 event null", v2, `{"event":null}`, "", "", ErrBadParam},
		{"missing sender", v1, `{"state_key":"@bob:b.de"}`, "", "", ErrBadParam},
		{"missing state_key", v1, `{"sender":"@alice:a.de"}`, "", "", ErrBadParam},
		{"sender not a string", v1, `{"sender":{},"state_key":"@bob:b.de"}`, "", "", ErrBadParam},
		{"state_key empty", v1, `{"sender":"@alice:a.de","state_key":""}`, "", "", ErrBadParam},
		{"invalid invitee", v2, `{"event":{"sender":"@alice:a.de","state_key":"@bob:b..de"}}`, "", "", ErrBadParam},
		{"malformed", v2, `{"event":{`, "", "", ErrNotJSON},
		{"v2 repeated event: last wins", v2, `{"event":{"sender":"@m:m.de","state_key":"@x:x.de"},"event":` + event + `}`, "@alice:a.de", "@bob:b.de", nil},
		{"nested sender ignored", v1, `{"content":{"sender":"@m:m.de"},"sender":"@alice:a.de","state_key":"@bob:b.de"}`, "@alice:a.de", "@bob:b.de", nil},
		{"v2 malformed outside event", v2, `{"event":` + event + `,}`, "", "", ErrNotJSON},
		{"not an object", v1, `"x"`, "", "", ErrNotJSON},
	} {
		t.Run(c.name, func(t *testing.T) {
			inviter, invitee, err := FederationInvite(c.route, []byte(c.body))
			if c.err != nil {
				if !errors.Is(err, c.err) || inviter != "" || invitee != "" {
					t.Fatalf("FederationInvite = %q, %q, %v; want %v", inviter, invitee, err, c.err)
				}
				return
			}
			if err != nil || inviter != c.inviter || invitee != c.invitee {
				t.Fatalf("FederationInvite = %q, %q, %v", inviter, invitee, err)
			}
		})
	}
}
