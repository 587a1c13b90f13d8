//go:build !wasip1

package filter_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMemoExact generates random requests per role from small pools of
// values, so that many of them share a memo key, and runs them through the
// filter natively with the memo's audit on (audit_test.go): every hit
// rebuilds the request's policy input and fails unless it equals the input
// the remembered decision was evaluated on. Equal keys imply equal input,
// for header keys and facts keys alike, or the test fails; it also fails
// unless the requests hit the memo often enough to have shown it.
func TestMemoExact(t *testing.T) {
	for _, role := range []string{"client", "federation", "egress"} {
		t.Run(role, func(t *testing.T) {
			clk := &clock{t: baseTime}
			e := &env{t: t, clk: clk, h: &lazyNative{clk: clk, t: t}}
			// The policy data tell apart requests of one key by their opaque
			// strings (opaqueDoc: exempt paths with transaction ids, blocked
			// users), so that the audit sees remembered decisions offered
			// to requests they do not fit.
			e.startWith(config(role, nil), opaqueDoc())
			rng := rand.New(rand.NewPCG(12, uint64(len(role))))
			const n = 3000
			for i := 0; i < n; i++ {
				hs, body := randomRequest(rng, role)
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("request %d %v %q: %v", i, hs, body, r)
						}
					}()
					id, _ := e.do(hs, body)
					e.settle(id)
					e.h.done(id)
				}()
			}
			hits, misses := e.h.counter("tim_filter_memo_hits"), e.h.counter("tim_filter_memo_misses")
			t.Logf("%d requests: %d memo hits, %d misses", n, hits, misses)
			if hits < n/4 {
				t.Errorf("%d memo hits in %d requests: too few to show the memo exact", hits, n)
			}
		})
	}
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

// randomRequest is a request of role built from pools of values: hosts with
// and without ports and in other cases, user agents approved and not,
// X-Matrix origins and destinations in and out of the list, room and user
// IDs, transaction ids, query strings and bodies of the routes that read
// them.
func randomRequest(rng *rand.Rand, role string) ([][2]string, string) {
	room := pick(rng, "!r:example.de", "!r:partner.de", "!s:evil.de", "!r:Kasse.DE")
	user := pick(rng, "@a:example.de", "@b:partner.de", "@f:partner.de", "@c:evil.de", "@d:kasse.de", "@e:home.example.de", "@x:home.example.de")
	txn := pick(rng, "t1", "t2", fmt.Sprint(rng.IntN(50)))
	server := pick(rng, "example.de", "partner.de:8448", "evil.de", "PARTNER.de", "home.example.de")
	invitees := func() string {
		var us []string
		for k := rng.IntN(3); k > 0; k-- {
			us = append(us, `"`+pick(rng, "@a:example.de", "@b:partner.de", "@f:partner.de", "@c:evil.de")+`"`)
		}
		return "[" + strings.Join(us, ",") + "]"
	}
	type shape struct{ method, path, body string }
	var shapes []shape
	switch role {
	case "client":
		shapes = []shape{
			{"GET", "/_matrix/client/v3/sync?timeout=30000&since=s" + txn, ""},
			{"GET", "/_matrix/client/v3/profile/" + user, ""},
			{"GET", "/_matrix/client/v3/rooms/" + room + "/messages?dir=b", ""},
			{"PUT", "/_matrix/client/v3/rooms/" + room + "/send/m.room.message/" + txn, `{"msgtype":"m.text","body":"x"}`},
			{"PUT", "/_matrix/client/v3/rooms/" + room + "/typing/" + user, `{"typing":true}`},
			{"POST", "/_matrix/client/v3/createRoom", `{"invite":` + invitees() + pick(rng, "", `,"invite_3pid":[{"medium":"email"}]`) + `}`},
			{"POST", "/_matrix/client/v3/rooms/" + room + "/invite", `{"user_id":"` + user + `"}`},
			{"POST", "/_matrix/client/v3/join/" + room + pick(rng, "", "?server_name="+server, "?via="+server+"&via=example.de"), `{}`},
			{"PUT", "/_matrix/client/v3/rooms/" + room + "/state/m.room.member/" + user, `{"membership":"` + pick(rng, "invite", "leave") + `"}`},
			{"GET", "/_matrix/client/v1/media/download/" + server + "/m" + txn, ""},
			{"POST", "/_matrix/client/v3/keys/query", `{"device_keys":{}}`},
			{"PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/" + txn, `{"messages":{}}`},
			{pick(rng, "GET", "HEAD", "DELETE"), "/_matrix/client/" + pick(rng, "v3/pushrules/", "versions", "v3/nope", "v3/account/whoami"), ""},
		}
	case "federation":
		shapes = []shape{
			{"PUT", "/_matrix/federation/v1/send/" + txn, `{"pdus":[],"edus":[]}`},
			{"GET", "/_matrix/federation/v1/query/profile?user_id=" + user, ""},
			{"POST", "/_matrix/federation/v1/user/keys/query", `{"device_keys":{}}`},
			{"GET", "/_matrix/federation/v1/state/" + room + "?event_id=$e", ""},
			{"GET", "/_matrix/federation/v1/make_join/" + room + "/" + user, ""},
			{"PUT", "/_matrix/federation/v2/invite/" + room + "/$e" + txn, `{"event":{"type":"m.room.member","sender":"` + user + `","state_key":"` + pick(rng, "@x:home.example.de", "@y:partner.de") + `","content":{"membership":"invite"}},"room_version":"10"}`},
			{"GET", "/_matrix/federation/v1/media/download/m" + txn, ""},
			{pick(rng, "GET", "HEAD"), "/_matrix/" + pick(rng, "key/v2/server", "federation/v1/version", "federation/v1/nope"), ""},
		}
	default:
		shapes = []shape{
			{"PUT", "/_matrix/federation/v1/send/" + txn, `{"pdus":[],"edus":[]}`},
			{"GET", "/_matrix/federation/v1/query/profile?user_id=" + user, ""},
			{"PUT", "/_matrix/federation/v2/invite/" + room + "/$e" + txn, `{"event":{"type":"m.room.member","sender":"@x:home.example.de","state_key":"` + user + `","content":{"membership":"invite"}},"room_version":"10"}`},
			{"GET", "/_matrix/media/v3/download/" + server + "/m" + txn, ""},
			{pick(rng, "GET", "POST"), "/_matrix/" + pick(rng, "key/v2/server", "federation/v1/version", "federation/v1/user/keys/query"), ""},
		}
	}
	s := pick(rng, shapes...)
	var hs [][2]string
	switch role {
	case "client":
		hs = [][2]string{{":method", s.method}, {":path", s.path}, {":authority", pick(rng, "matrix.home.example.de", "matrix.home.example.de:443", "Matrix.Home.example.de")}}
		if ua := pick(rng, "TIM-Client/1.0 (Linux),tim-client-1.0", "X/1,evil", "", "TIM-Client/1.0,tim-client-2.0"); ua != "" {
			hs = append(hs, [2]string{"user-agent", ua})
		}
		if rng.IntN(4) == 0 {
			hs = append(hs, [2]string{"x-tim-user-agent", pick(rng, "tim-client-1.0", "other")})
		}
		hs = append(hs, [2]string{"authorization", "Bearer tok" + txn})
	case "federation":
		origin := pick(rng, "partner.de", "Kasse.DE", "evil.de", "partner.de:8448", "")
		hs = fedReq(s.method, s.path, origin)
		if origin != "" && rng.IntN(3) == 0 {
			hs[len(hs)-1][1] = `X-Matrix origin="` + origin + `",destination="` + pick(rng, "other.de", "home.example.de:8448") + `",key="ed25519:b",sig="eA"`
		}
	default:
		hs = egressReq(s.method, s.path, pick(rng, "partner.de", "evil.de", "partner.de:8448", "Kasse.DE"))
	}
	return hs, s.body
}
