//go:build !wasip1

package filter_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// opaqueDoc is the test policy with data that tells apart requests of one
// endpoint by their opaque strings: an exempt path with a transaction id,
// an exempt path prefix with a user ID, and blocked users beside users of
// the same domain that are not.
func opaqueDoc() []byte {
	var doc map[string]any
	if err := json.Unmarshal(policyDoc, &doc); err != nil {
		panic(err)
	}
	cfg := doc["data"].(map[string]any)["config"].(map[string]any)
	exempt := cfg["exempt_paths"].(map[string]any)
	exempt["/_matrix/client/v3/rooms/!r:example.de/send/m.room.message/t1"] = map[string]any{"client": map[string]any{"PUT": map[string]any{"*": true}}}
	exempt["/_matrix/federation/v1/send/t2"] = map[string]any{"federation": map[string]any{"PUT": map[string]any{"*": true}}}
	cfg["exempt_prefixes"] = map[string]any{"client": []any{map[string]any{"method": "GET", "path_prefix": "/_matrix/client/v3/profile/@a:"}}}
	cfg["blocked_users"] = map[string]any{"@b:partner.de": true, "@x:home.example.de": true}
	doc["revision"] = "opaque"
	return mustJSON(doc)
}

func (e *env) startWith(cfg, policy []byte) {
	e.t.Helper()
	if !e.h.startPlugin(cfg) {
		e.t.Fatal("plugin did not start")
	}
	e.answerList(200, signedList(e.t, pki, 1, listV1...))
	e.answerPolicy(200, policy)
}

// TestMemoOpaqueStrings: a decision is remembered for the requests of its
// key whose opaque strings the policy cannot tell apart from the evaluated
// one's (a new transaction id, another invitee of the same domain), and for
// no other: an exempt path, an exempt prefix and a blocked invitee of the
// same key get their own decisions; the hits show the memo answered.
func TestMemoOpaqueStrings(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.startWith(config("client", nil), opaqueDoc())
		send := func(txn string) [][2]string {
			return clientReq("PUT", "/_matrix/client/v3/rooms/!r:example.de/send/m.room.message/"+txn)
		}
		hits := func() int64 { return e.h.counter("tim_filter_memo_hits") }
		steps := []struct {
			name    string
			headers [][2]string
			body    string
			status  int
			hit     bool
		}{
			{"send t0, unapproved client", withUA(send("t0"), "X/1,evil"), `{}`, 403, false},
			{"send t5, unapproved client: t0's decision", withUA(send("t5"), "X/1,evil"), `{}`, 403, true},
			{"send t1, unapproved client: exempt path", withUA(send("t1"), "X/1,evil"), `{}`, 0, false},
			// t1's decision sits beside t0's in the key's pair of slots: t0's
			// answers t6.
			{"send t6, unapproved client: not exempt, t0's decision", withUA(send("t6"), "X/1,evil"), `{}`, 403, true},
			{"send t3", send("t3"), `{}`, 0, false},
			{"send t4: t3's decision", send("t4"), `{}`, 0, true},
			{"profile @b, unapproved client", withUA(clientReq("GET", "/_matrix/client/v3/profile/@b:partner.de"), "X/1,evil"), "", 403, false},
			{"profile @c, unapproved client: @b's decision", withUA(clientReq("GET", "/_matrix/client/v3/profile/@c:partner.de"), "X/1,evil"), "", 403, true},
			{"profile @a, unapproved client: exempt prefix", withUA(clientReq("GET", "/_matrix/client/v3/profile/@a:partner.de"), "X/1,evil"), "", 0, false},
			{"createRoom inviting @f", clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@f:partner.de"]}`, 0, false},
			{"createRoom inviting @g: @f's decision", clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@g:partner.de"]}`, 0, true},
			{"createRoom inviting blocked @b", clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@b:partner.de"]}`, 403, false},
			{"createRoom inviting @h: @f's decision", clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@h:partner.de"]}`, 0, true},
			{"createRoom inviting blocked @b again: its own decision", clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@b:partner.de"]}`, 403, true},
			{"createRoom inviting @i: @f's decision, not @b's", clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@i:partner.de"]}`, 0, true},
		}
		for _, s := range steps {
			before := hits()
			id, _ := e.do(s.headers, s.body)
			o := e.settle(id)
			switch {
			case s.status == 0:
				e.expect(s.name, o, 0, "", "")
			case strings.Contains(s.name, "blocked"):
				e.expect(s.name, o, s.status, "M_FORBIDDEN", "This user is blocked by the organisation")
			default:
				e.expect(s.name, o, s.status, "M_FORBIDDEN", "This client is not approved for the TI-Messenger")
			}
			e.h.done(id)
			if hit := hits() > before; hit != s.hit {
				t.Errorf("%s: memo hit %v, want %v", s.name, hit, s.hit)
			}
		}
	})
}

// TestMemoOpaqueOrigin: the X-Matrix origin is opaque too: a transaction of
// one federated server gets the decision of another's; an origin outside
// the list, or an exempt path, does not.
func TestMemoOpaqueOrigin(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.startWith(config("federation", nil), opaqueDoc())
		hits := func() int64 { return e.h.counter("tim_filter_memo_hits") }
		for _, s := range []struct {
			name, txn, origin string
			pass, hit         bool
		}{
			{"partner.de", "10", "partner.de", true, false},
			{"example.de: partner.de's decision", "11", "example.de", true, true},
			{"evil.de: not in the list", "12", "evil.de", false, false},
			{"Kasse.DE: partner.de's decision", "13", "Kasse.DE", true, true},
			{"partner.de:8448: partner.de's decision", "14", "partner.de:8448", true, true},
			{"partner.de, exempt path", "t2", "partner.de", true, false},
		} {
			before := hits()
			id, _ := e.do(fedReq("PUT", "/_matrix/federation/v1/send/"+s.txn, s.origin), `{"pdus":[],"edus":[]}`)
			o := e.settle(id)
			e.h.done(id)
			if o.passed != s.pass {
				t.Errorf("%s: passed %v (status %d %s), want %v", s.name, o.passed, o.status, o.body, s.pass)
			}
			if hit := hits() > before; hit != s.hit {
				t.Errorf("%s: memo hit %v, want %v", s.name, hit, s.hit)
			}
		}
	})
}
