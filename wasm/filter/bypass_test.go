//go:build !wasip1

package filter_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/proxyhost"
)

// Regression cases of the bypasses an attacker found when the filter
// forwarded what it did not recognise (B1–B9 in docs/decisions/filter.md,
// F20). Each runs natively and on the compiled module, twice (the second
// time from the decision memo).

func fedReqDest(method, path, origin, dest string) [][2]string {
	return [][2]string{{":method", method}, {":path", path}, {":authority", "home.example.de:8448"},
		{"authorization", `X-Matrix origin="` + origin + `",destination="` + dest + `",key="ed25519:a",sig="c2ln"`}}
}

const fedInviteBody = `{"event":{"type":"m.room.member","sender":"@alice:example.de","state_key":"@bob:home.example.de","content":{"membership":"invite"}},"room_version":"10"}`

func TestBypassesClientListener(t *testing.T) {
	inv := `{"user_id":"@eve:evil.de"}`
	runRows(t, "client", []row{
		// B1: server-server endpoints on the client-server listener.
		{name: "B1 federation invite on the client listener", headers: append(clientReq("PUT", "/_matrix/federation/v2/invite/!r:home.example.de/$e"),
			[2]string{"authorization", `X-Matrix origin="example.de",destination="home.example.de",key="ed25519:a",sig="c2ln"`}), body: fedInviteBody, status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "B1 federation send on the client listener", headers: clientReq("PUT", "/_matrix/federation/v1/send/1"), body: `{}`, status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "B1 key server on the client listener", headers: clientReq("GET", "/_matrix/key/v2/server"), status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "unknown endpoint", headers: clientReq("GET", "/_synapse/admin/v1/users"), status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "legacy prefix api/v1", headers: clientReq("POST", "/_matrix/client/api/v1/createRoom"), body: `{"invite":["@a:evil.de"]}`, status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "method not in the table", headers: clientReq("DELETE", "/_matrix/client/v3/createRoom"), status: 405, errcode: "M_UNRECOGNIZED"},
		// B2: an escaped "?" stays inside its segment.
		{name: "B2 %3F after the media server", headers: clientReq("GET", "/_matrix/media/v3/download/evil.de/%3Fabc"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B2 %3F in the media server", headers: clientReq("GET", "/_matrix/media/v3/download/evil.de%3F/abc"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B2 %3F as the room of an invite", headers: clientReq("POST", "/_matrix/client/v3/rooms/%3F/invite"), body: inv, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "B2 %2F in a literal segment", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de%2Finvite"), body: inv, status: 404, errcode: "M_UNRECOGNIZED"},
		// B3: the transaction-id variants.
		{name: "B3 PUT invite with txn id", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/invite/txn1"), body: inv, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "B3 PUT createRoom with txn id", headers: clientReq("PUT", "/_matrix/client/v3/createRoom/txn1"), body: `{"invite":["@a:evil.de"]}`, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "B3 PUT createRoom two invitees", headers: clientReq("PUT", "/_matrix/client/r0/createRoom/txn2"), body: `{"invite":["@a:partner.de","@b:example.de"]}`, status: 400, errcode: "M_FORBIDDEN", text: tooMany},
		// B6: dot segments, raw or escaped, and empty segments.
		{name: "B6 /./createRoom", headers: clientReq("POST", "/_matrix/client/v3/./createRoom"), body: `{"invite":["@a:evil.de"]}`, status: 400, errcode: "M_UNRECOGNIZED"},
		{name: "B6 /x/../rooms", headers: clientReq("POST", "/_matrix/client/v3/x/../rooms/!r:home.example.de/invite"), body: inv, status: 400, errcode: "M_UNRECOGNIZED"},
		{name: "B6 %2e%2E", headers: clientReq("POST", "/_matrix/client/v3/x/%2e%2E/createRoom"), body: `{}`, status: 400, errcode: "M_UNRECOGNIZED"},
		{name: "B6 .%2e", headers: clientReq("GET", "/_matrix/client/v3/.%2e/sync"), status: 400, errcode: "M_UNRECOGNIZED"},
		{name: "empty segment", headers: clientReq("POST", "/_matrix/client/v3//createRoom"), body: `{}`, status: 400, errcode: "M_UNRECOGNIZED"},
		// B7: initial_state member events count as invitees.
		{name: "B7 initial_state invite of a non-federated user", headers: clientReq("POST", "/_matrix/client/v3/createRoom"),
			body: `{"initial_state":[{"type":"m.room.member","state_key":"@z:evil.de","content":{"membership":"invite"}}]}`, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "B7 invite plus initial_state member: two invitees", headers: clientReq("POST", "/_matrix/client/v3/createRoom"),
			body: `{"invite":["@a:partner.de"],"initial_state":[{"type":"m.room.member","state_key":"@b:partner.de","content":{"membership":"invite"}}]}`, status: 400, errcode: "M_FORBIDDEN", text: tooMany},
		{name: "B7 initial_state escaped type", headers: clientReq("POST", "/_matrix/client/v3/createRoom"),
			body: `{"initial_state":[{"type":"m.room.m\u0065mber","state_key":"@z:evil.de","content":{"membership":"invite"}}]}`, status: 403, errcode: "M_FORBIDDEN"},
		{name: "B7 initial_state other events pass", headers: clientReq("POST", "/_matrix/client/v3/createRoom"),
			body: `{"initial_state":[{"type":"m.room.encryption","state_key":"","content":{"algorithm":"m.megolm.v1.aes-sha2"}},{"type":"de.gematik.tim.roomtype","content":{}}]}`},
		{name: "B7 initial_state member with bad state key", headers: clientReq("POST", "/_matrix/client/v3/createRoom"),
			body: `{"initial_state":[{"type":"m.room.member","state_key":"z","content":{"membership":"invite"}}]}`, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "member state event invite", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/m.room.member/@z:evil.de"),
			body: `{"membership":"invite"}`, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "member state event, escaped event type", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/m.room%2Emember/%40z%3Aevil.de"),
			body: `{"membership":"invite"}`, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "member state event leave passes", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/m.room.member/@z:evil.de"), body: `{"membership":"leave"}`},
		// An empty state key is a trailing "/" (matrix-js-sdk sends state events so).
		{name: "custom state event with empty key passes", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/de.gematik.tim.room.default.v1/"), body: `{"name":"x"}`},
		{name: "room name with empty key passes", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/m.room.name/"), body: `{"name":"x"}`},
		{name: "member event with empty key", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/m.room.member/"), body: `{"membership":"invite"}`, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "custom state event with key passes", headers: clientReq("PUT", "/_matrix/client/v3/rooms/!r:home.example.de/state/de.gematik.tim.room.default.v1/x"), body: `{"name":"x"}`},
		// B8: third-party invites and joins through remote servers.
		{name: "B8 invite_3pid", headers: clientReq("POST", "/_matrix/client/v3/createRoom"),
			body: `{"invite_3pid":[{"id_server":"i.de","id_access_token":"t","medium":"email","address":"a@evil.de"}]}`, status: 403, errcode: "M_FORBIDDEN", text: "The invite was refused"},
		{name: "B8 invite by e-mail", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"),
			body: `{"id_server":"i.de","id_access_token":"t","medium":"email","address":"a@evil.de"}`, status: 403, errcode: "M_FORBIDDEN", text: "The invite was refused"},
		{name: "B8 join via non-federated server_name", headers: clientReq("POST", "/_matrix/client/v3/join/!r:example.de?server_name=evil.de"), body: `{}`, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B8 join via escaped via", headers: clientReq("POST", "/_matrix/client/v3/join/%23room%3Aexample.de?via=partner.de&v%69a=EVIL.de%3A8448"), body: `{}`, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B8 join of a room on a non-federated server", headers: clientReq("POST", "/_matrix/client/v3/join/!r:evil.de"), body: `{}`, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B8 knock via non-federated server", headers: clientReq("POST", "/_matrix/client/v3/knock/!r:example.de?via=evil.de"), body: `{}`, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B8 rooms/{id}/join of a non-federated room", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:evil.de/join"), body: `{}`, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "join via federated servers", headers: clientReq("POST", "/_matrix/client/v3/join/!r:example.de?server_name=partner.de&via=kasse.de:8448"), body: `{}`},
		{name: "join with an invalid server name", headers: clientReq("POST", "/_matrix/client/v3/join/!r:example.de?via=evil.de/x"), body: `{}`, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "join with ';' in the query", headers: clientReq("POST", "/_matrix/client/v3/join/!r:example.de?via=partner.de;via=evil.de"), body: `{}`, status: 400, errcode: "M_INVALID_PARAM"},
		// B9: one grammar for domains with ports and capitals.
		{name: "B9 invitee with port and capitals", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":"@x:KASSE.de:8448"}`},
	})
}

func TestBypassesFederationListener(t *testing.T) {
	runRows(t, "federation", []row{
		// B1: client-server endpoints on the server-server listener.
		{name: "B1 createRoom on the federation listener", headers: fedReq("POST", "/_matrix/client/v3/createRoom", "example.de"), body: `{"invite":["@a:evil.de"]}`, status: 404, errcode: "M_UNRECOGNIZED"},
		// B2: %3F in the event id of an invite stays in its segment, so the
		// invite is recognised and asks the control plane (here: refused
		// without an answer, since the test host does not answer it).
		{name: "B2 %3F as the room of a v1 invite", headers: fedReq("PUT", "/_matrix/federation/v1/invite/%3F/$e", "evil.de"),
			body: `{"type":"m.room.member","sender":"@e:evil.de","state_key":"@bob:home.example.de","content":{"membership":"invite"}}`, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B2 invite with %3F event id from a non-federated origin", headers: fedReq("PUT", "/_matrix/federation/v2/invite/!r:home.example.de/%3F", "evil.de"), body: fedInviteBody, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		// B5: the destination must be this server.
		{name: "B5 destination not ours", headers: fedReqDest("GET", "/_matrix/federation/v1/query/profile", "example.de", "evil.example"), status: 401, errcode: "M_UNAUTHORIZED"},
		{name: "B5 destination ours with port", headers: fedReqDest("GET", "/_matrix/federation/v1/query/profile", "example.de", "home.example.de:8448")},
		// B8: third-party invite exchange.
		{name: "B8 exchange_third_party_invite", headers: fedReq("PUT", "/_matrix/federation/v1/exchange_third_party_invite/!r:home.example.de", "example.de"), body: `{}`, status: 403, errcode: "M_FORBIDDEN", text: "The invite was refused"},
		{name: "make_join from a non-federated origin", headers: fedReq("GET", "/_matrix/federation/v1/make_join/!r:home.example.de/@e:evil.de", "evil.de"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "make_join from a federated origin", headers: fedReq("GET", "/_matrix/federation/v1/make_join/!r:home.example.de/@a:example.de", "example.de")},
		// B9: an origin with a port is its domain.
		{name: "B9 origin with port", headers: fedReqDest("GET", "/_matrix/federation/v1/query/profile", "example.de:8448", "home.example.de")},
		{name: "B9 origin in capitals", headers: fedReqDest("GET", "/_matrix/federation/v1/query/profile", "Partner.DE", "home.example.de")},
		{name: "B6 dot segment on the federation listener", headers: fedReq("GET", "/_matrix/key/v2/server/../../federation/v1/version", ""), status: 400, errcode: "M_UNRECOGNIZED"},
	})
}

func TestBypassesEgress(t *testing.T) {
	sign := func(h [][2]string, dest string) [][2]string {
		return append(h, [2]string{"authorization", `X-Matrix origin="home.example.de",destination="` + dest + `",key="ed25519:a",sig="c2ln"`})
	}
	runRows(t, "egress", []row{
		// B4: the host contacted decides; a destination that differs is refused.
		{name: "B4 destination federated, host not", headers: sign([][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/1"}, {":authority", "evil.de:8448"}}, "example.de"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B4 destination and host federated but different", headers: sign([][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/1"}, {":authority", "partner.de"}}, "example.de"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "B4 CONNECT to a non-federated host", headers: [][2]string{{":method", "CONNECT"}, {":authority", "evil.de:443"}}, status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "host with port equals the destination", headers: sign([][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/1"}, {":authority", "Example.de:8448"}}, "example.de:8448")},
	})
}

// TestUnknownEndpointsPass: the operator switch lets unknown endpoints
// through, each with a decision-log line; the other checks still apply.
func TestUnknownEndpointsPass(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(policyDoc, &doc); err != nil {
		t.Fatal(err)
	}
	doc["data"].(map[string]any)["config"].(map[string]any)["unknown_endpoints"] = "pass"
	passDoc := mustJSON(doc)
	both(t, func(t *testing.T, e *env) {
		if !e.h.startPlugin(config("client", nil)) {
			t.Fatal("start")
		}
		e.answerList(200, signedList(t, pki, 1, listV1...))
		e.answerPolicy(200, passDoc)
		for i := 0; i < 2; i++ {
			logged := decisionLines(e)
			id, o := e.do(clientReq("GET", "/_synapse/admin/v1/users"), "")
			e.expect("unknown endpoint passes", o, 0, "", "")
			e.h.done(id)
			if decisionLines(e) != logged+1 {
				t.Errorf("no decision-log line for an unknown endpoint that passed")
			}
			last := ""
			for _, l := range e.h.logs(proxyhost.LogWarn) {
				if strings.Contains(l, "decision id=") {
					last = l
				}
			}
			if !strings.Contains(last, "outcome=allow-logged") || !strings.Contains(last, "prefix=/_synapse/admin/v1") {
				t.Errorf("decision-log line %q", last)
			}
		}
		// Segments that are IDs are not written in clear.
		id, o := e.do(clientReq("GET", "/@alice:home.example.de/x%40y/v1/z"), "")
		e.expect("unknown endpoint with an ID in its prefix passes", o, 0, "", "")
		e.h.done(id)
		for _, l := range e.h.logs(proxyhost.LogWarn) {
			if strings.Contains(l, "alice") || strings.Contains(l, "x%40y") {
				t.Errorf("decision-log line with an ID in clear: %q", l)
			}
		}
		_, o = e.do(withUA(clientReq("GET", "/_synapse/admin/v1/users"), "X/1,evil"), "")
		e.expect("client id still checked", o, 403, "M_FORBIDDEN", "")
		_, o = e.do(clientReq("POST", "/_matrix/client/v3/./createRoom"), `{}`)
		e.expect("canonical path still required", o, 400, "M_UNRECOGNIZED", "")
		id, _ = e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:evil.de"]}`)
		e.expect("invitees still checked", e.settle(id), 403, "M_FORBIDDEN", "evil.de could not be invited")
	})
}

// TestJoinServersNotRemembered: a join's servers are in its query, which
// the header key leaves out; a join signed with X-Matrix (so eligible for a
// header key) must not take the decision of an earlier join with the same
// headers and another query.
func TestJoinServersNotRemembered(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		xm := [2]string{"authorization", `X-Matrix origin="example.de",destination="home.example.de",key="ed25519:a",sig="c2ln"`}
		for i := 0; i < 2; i++ {
			id, o := e.do(clientReq("POST", "/_matrix/client/v3/join/!r:example.de?via=partner.de", xm), `{}`)
			e.expect("join via a federated server", o, 0, "", "")
			e.h.done(id)
			id, o = e.do(clientReq("POST", "/_matrix/client/v3/join/!r:example.de?via=evil.de", xm), `{}`)
			e.expect("same headers, via a non-federated server", e.settle(id), 403, "M_FORBIDDEN", unreachable)
			e.h.done(id)
		}
	})
}

// TestBypassB2FederationInvite: an invite whose event or room id holds an
// escaped "?" is still an invite: from a federated origin it goes to the
// control plane (stages 2/3), and the control plane's refusal is final.
func TestBypassB2FederationInvite(t *testing.T) {
	v1Body := `{"type":"m.room.member","sender":"@alice:example.de","state_key":"@bob:home.example.de","content":{"membership":"invite"}}`
	for _, c := range []struct{ name, path, body string }{
		{"v2, %3F as the event id", "/_matrix/federation/v2/invite/!r:home.example.de/%3F", fedInviteBody},
		{"v2, %3F in the event id", "/_matrix/federation/v2/invite/!r:home.example.de/$e%3Fx", fedInviteBody},
		{"v1, %3F as the room id", "/_matrix/federation/v1/invite/%3F/$e", v1Body},
	} {
		t.Run(c.name, func(t *testing.T) {
			both(t, func(t *testing.T, e *env) {
				e.start(config("federation", nil))
				id, o := e.do(fedReq("PUT", c.path, "example.de"), c.body)
				if o.status != 0 || o.passed {
					t.Fatalf("decided without asking the control plane: %+v", o)
				}
				call := e.mustPending("/internal/v1/invite-permission")
				e.h.respond(call, 200, nil, []byte(`{"allow":false,"stage":3,"reason":"no"}`))
				e.expect(c.name, e.h.outcome(id), 403, "M_FORBIDDEN", "The invite was refused")
			})
		})
	}
}
