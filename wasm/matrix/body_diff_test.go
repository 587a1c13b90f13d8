package matrix

import (
	"reflect"
	"strings"
	"testing"
)

// Differential fuzz targets: the scanner must answer exactly as the
// encoding/json code it replaced (body_oracle_test.go) — the same values,
// nil versus empty, and the same error — for any route and body.

var diffRoutes = [][2]string{
	{"POST", "/_matrix/client/v3/createRoom"},
	{"POST", "/_matrix/client/v3/rooms/!r:x.de/invite"},
	{"PUT", "/_matrix/client/v3/rooms/!r:x.de/state/m.room.member/@bob:b.de"},
	{"PUT", "/_matrix/client/v3/rooms/!r:x.de/state/m.room.member/bob"},
	{"PUT", "/_matrix/federation/v1/invite/!r:x.de/$e"},
	{"PUT", "/_matrix/federation/v2/invite/!r:x.de/$e"},
	{"GET", "/_matrix/client/v3/sync"},
}

// diffBodies are tricky JSON texts: escapes, surrogates, duplicates, deep
// nesting, numbers, whitespace, BOM, trailing garbage, invalid UTF-8.
func diffBodies() []string {
	const event = `{"type":"m.room.member","sender":"@alice:a.de","state_key":"@bob:b.de","content":{"membership":"invite"}}`
	deep := func(n int, open, close string) string {
		return `{"invite":["@a:b.de"],"x":` + strings.Repeat(open, n) + strings.Repeat(close, n) + `}`
	}
	return []string{
		`{"preset":"private_chat","invite":["@bob:b.de"],"is_direct":true}`,
		`{"invite":["@b:b.de","@a:a.de:8448"]}`, `{"name":"x"}`, `{"invite":null}`, `{"invite":[]}`, `{"invite":[ ]}`,
		`{"Invite":["@x:x.de"],"invite":["@bob:b.de"],"INVITE":["@y:y.de"]}`,
		`{"invite":["@x:x.de"],"invite":["@bob:b.de"]}`, `{"invite":["@x:x.de"],"invite":null}`,
		`{"invite":["@x:x.de"],"invite":1}`, `{"invite":1,"invite":["@x:x.de"]}`,
		`{"invite":"@bob:b.de"}`, `{"invite":["@bob:b.de",7]}`, `{"invite":[null]}`, `{"invite":[{}]}`,
		`{"invite":["bob@b.de"]}`, `{"invite":["@bob:b_d.de"]}`, `{"invite":["@bob:b.de"]`, `["@bob:b.de"]`,
		`null`, ``, ` `, `{"invite":[]}x`, `{"invite":[]} `, "\ufeff{\"invite\":[]}", "\t\r\n{\"invite\" : [ \"@a:b.de\" , \"@c:d.de\" ] }\n",
		`{"\u0069nvite":["@a:b.de"]}`, `{"invit\u0065":["\u0040a:b.de"]}`, `{"invite\u0000":["@a:b.de"]}`,
		`{"invite":["@a\u003ab.de"]}`, `{"invite":["@\ud83d\ude00:b.de"]}`, `{"invite":["@\ud83d:b.de"]}`,
		`{"invite":["@\ud83d\u0061:b.de"]}`, `{"invite":["@\ude00:b.de"]}`, `{"invite":["@a\/b:b.de"]}`,
		`{"invite":["@a\"b:b.de"]}`, `{"invite":["@a\\b:b.de"]}`, `{"invite":["@a\tb:b.de"]}`, `{"invite":["@a\x:b.de"]}`,
		`{"invite":["@a\u00"]}`, `{"invite":["@a` + "\x01" + `:b.de"]}`, `{"invite":["@a` + "\xff" + `:b.de"]}`,
		`{"inv` + "\xff" + `ite":["@a:b.de"]}`, `{"invite":["@` + "\xc3\xa4" + `:b.de"]}`, `{"invite":["@a:b.de"` + "\x7f" + `]}`,
		`{"n":-0,"m":1.5e+10,"o":0.0,"p":-12E-3,"invite":[]}`, `{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":-}`, `{"n":1e}`,
		`{"n":+1}`, `{"n":0x1}`, `{"n":NaN}`, `{"n":tru}`, `{"n":nulll}`, `{"n":true,"f":false,"z":null}`,
		`{"a":[1,2,]}`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{'a':1}`, `{a:1}`, `{"a":[}`, `{"a":{]}`,
		`{"a":[{"b":[{"c":{}}]}],"invite":["@a:b.de"]}`, `{}`, `{ }`, `{}}`, `{}{}`, `{"a":"b"}"`,
		deep(63, "[", "]"), deep(9998, "[", "]"), deep(9999, "[", "]"), deep(10000, "[", "]"), deep(9999, `{"a":`, "}"),
		`{"user_id":"@bob:b.de","reason":"hi"}`, `{"id_server":"i.de","medium":"email","address":"a@b.de"}`,
		`{"user_id":null}`, `{"user_id":1}`, `{"user_id":"@bob"}`, `{"USER_ID":"@bob:b.de"}`, `{user_id:"@bob:b.de"}`,
		`{"user_id":"@a:b.de","user_id":"@c:d.de"}`, `{"user_id":"@a:b.de","user_id":null}`,
		`{"membership":"invite"}`, `{"membership":"leave"}`, `{"displayname":"x"}`, `{"membership":["invite"]}`,
		`{"membership":`, `{"membership":"\u0069nvite"}`, `{"membership":"invite\u0000"}`, `{"membership":null}`,
		`{"membership":"invite","membership":"leave"}`, `{"membership":"inv` + "\xff" + `"}`, `{"membership":"Invite"}`,
		event, `{"room_version":"10","event":` + event + `,"invite_room_state":[]}`,
		`{"sender":"@mallory:m.de","state_key":"@x:x.de","event":` + event + `}`,
		`{"sender":"@alice:a.de","state_key":"@bob:b.de","event":{"sender":"@m:m.de","state_key":"@x:x.de"}}`,
		`{"event":"x"}`, `{"event":null}`, `{"event":[]}`, `{"event":{}}`, `{"state_key":"@bob:b.de"}`, `{"sender":"@alice:a.de"}`,
		`{"sender":{},"state_key":"@bob:b.de"}`, `{"sender":"@alice:a.de","state_key":""}`,
		`{"event":{"sender":"@alice:a.de","state_key":"@bob:b..de"}}`, `{"event":{`, `"x"`,
		`{"event":{"sender":"@a:a.de","state_key":"@b:b.de"},"event":{"sender":"@c:c.de","state_key":"@d:d.de"}}`,
		`{"event":{"sender":"@a:a.de","state_key":"@b:b.de","sender":"@c:c.de"}}`,
		`{"event":{"x":{"sender":"@m:m.de"},"sender":"@a:a.de","state_key":"@b:b.de"}}`,
	}
}

func FuzzInviteesDifferential(f *testing.F) {
	for _, r := range diffRoutes {
		for _, b := range diffBodies() {
			f.Add(r[0], r[1], b)
		}
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		r := testRoute(method, path)
		got, _, gotErr := Invitees(r, []byte(body))
		want, wantErr := oldInvitees(r, []byte(body))
		if gotErr != wantErr || !reflect.DeepEqual(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("Invitees(%+v, %q) = %#v, %v; encoding/json: %#v, %v", r, body, got, gotErr, want, wantErr)
		}
	})
}

func FuzzFederationInviteDifferential(f *testing.F) {
	for _, r := range diffRoutes {
		for _, b := range diffBodies() {
			f.Add(r[0], r[1], b)
		}
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		r := testRoute(method, path)
		inviter, invitee, gotErr := FederationInvite(r, []byte(body))
		wantInviter, wantInvitee, wantErr := oldFederationInvite(r, []byte(body))
		if gotErr != wantErr || inviter != wantInviter || invitee != wantInvitee {
			t.Fatalf("FederationInvite(%+v, %q) = %q, %q, %v; encoding/json: %q, %q, %v", r, body, inviter, invitee, gotErr, wantInviter, wantInvitee, wantErr)
		}
	})
}

// TestNestingAgainstOracle compares mixed object/array nesting around the
// 64 levels kept on the stack and around the depth limit, with the right
// closers and with one wrong closer at every depth.
func TestNestingAgainstOracle(t *testing.T) {
	r := testRoute("POST", "/_matrix/client/v3/createRoom")
	for _, n := range []int{1, 2, 62, 63, 64, 65, 66, 127, 128, 129, 200, 9998, 9999, 10000} {
		var open, closing []string
		for d := 0; d < n; d++ {
			if d%3 == 1 {
				open, closing = append(open, `{"invite":`), append(closing, `}`)
			} else {
				open, closing = append(open, `[`), append(closing, `]`)
			}
		}
		bodies := []string{`{"x":` + strings.Join(open, "") + reverseJoin(closing) + `,"invite":["@a:b.de"]}`}
		if n <= 200 {
			for wrong := 0; wrong < n; wrong++ {
				c := append([]string(nil), closing...)
				if c[wrong] == "]" {
					c[wrong] = "}"
				} else {
					c[wrong] = "]"
				}
				bodies = append(bodies, `{"x":`+strings.Join(open, "")+reverseJoin(c)+`}`)
			}
		}
		for _, body := range bodies {
			got, _, gotErr := Invitees(r, []byte(body))
			want, wantErr := oldInvitees(r, []byte(body))
			if gotErr != wantErr || !reflect.DeepEqual(got, want) {
				t.Fatalf("depth %d: Invitees = %q, %v; encoding/json: %q, %v", n, got, gotErr, want, wantErr)
			}
		}
	}
}

func reverseJoin(s []string) string {
	var b strings.Builder
	for i := len(s) - 1; i >= 0; i-- {
		b.WriteString(s[i])
	}
	return b.String()
}
