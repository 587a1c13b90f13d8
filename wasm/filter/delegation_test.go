//go:build !wasip1

package filter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// Server-name delegation on egress (F21): the filter learns from the
// homeserver's well-known lookups which host serves which federated
// server, and the policy lets that host stand for that server only.

// responder delivers an upstream's answer to a stream.
type responder interface {
	responseHeaders(id uint32, headers [][2]string, endOfStream bool) types.Action
	responseBody(id uint32, body []byte, endOfStream bool) types.Action
	forwardedHeaders(id uint32) [][2]string // the request headers as the filter left them
}

func (h *nativeHost) forwardedHeaders(id uint32) [][2]string {
	return h.emu.GetCurrentRequestHeaders(id)
}
func (h *wasmHost) forwardedHeaders(id uint32) [][2]string { return h.st[id].ReqHeaders }

func (h *nativeHost) responseHeaders(id uint32, hs [][2]string, eos bool) types.Action {
	return h.emu.CallOnResponseHeaders(id, hs, eos)
}

func (h *nativeHost) responseBody(id uint32, b []byte, eos bool) types.Action {
	return h.emu.CallOnResponseBody(id, b, eos)
}

func (h *wasmHost) responseHeaders(id uint32, hs [][2]string, eos bool) types.Action {
	return types.Action(must(h.vm.ResponseHeaders(h.st[id], hs, eos)))
}

func (h *wasmHost) responseBody(id uint32, b []byte, eos bool) types.Action {
	return types.Action(must(h.vm.ResponseBody(h.st[id], b, eos)))
}

// wellKnown runs the homeserver's lookup of server's well-known through the
// filter and, when the filter lets it through, answers it with status and
// body (in chunks of at most 7 bytes, as a network delivers them). Every
// response callback must continue: the filter never holds an answer back.
func (e *env) wellKnown(server string, status int, body string) outcome {
	e.t.Helper()
	return e.wellKnownEncoded(server, status, "", body)
}

// wellKnownEncoded is wellKnown with a Content-Encoding on the answer.
func (e *env) wellKnownEncoded(server string, status int, encoding, body string) outcome {
	e.t.Helper()
	r := e.h.(responder)
	id, o := e.do([][2]string{{":method", "GET"}, {":path", "/.well-known/matrix/server"}, {":authority", server}, {"accept-encoding", "gzip"}}, "")
	if !o.passed {
		e.h.done(id)
		return o
	}
	for _, h := range r.forwardedHeaders(id) {
		if h[0] == "accept-encoding" {
			e.t.Fatalf("the lookup goes upstream asking for %s: its answer could not be read", h[1])
		}
	}
	hs := [][2]string{{":status", itoa(status)}, {"content-type", "application/json"}}
	if encoding != "" {
		hs = append(hs, [2]string{"content-encoding", encoding})
	}
	if a := r.responseHeaders(id, hs, body == ""); a != types.ActionContinue {
		e.t.Fatalf("response headers held back: %v", a)
	}
	for len(body) > 0 {
		n := min(len(body), 7)
		if a := r.responseBody(id, []byte(body[:n]), n == len(body)); a != types.ActionContinue {
			e.t.Fatalf("response body held back: %v", a)
		}
		body = body[n:]
	}
	e.h.done(id)
	return o
}

func signedFor(method, path, hostPort, dest string) [][2]string {
	h := [][2]string{{":method", method}, {":path", path}, {":authority", hostPort}}
	if dest != "" {
		h = append(h, [2]string{"authorization", `X-Matrix origin="home.example.de",destination="` + dest + `",key="ed25519:a",sig="c2ln"`})
	}
	return h
}

// expectEgress runs a request twice (the second time a remembered decision
// would answer) and checks both answers.
func (e *env) expectEgress(name string, h [][2]string, pass bool) {
	e.t.Helper()
	for i := 0; i < 2; i++ {
		id, o := e.do(h, "")
		if o.status == 0 && !o.passed {
			o = e.settle(id)
		}
		if pass {
			e.expect(name, o, 0, "", "")
		} else {
			e.expect(name, o, 403, "M_FORBIDDEN", unreachable)
		}
		e.h.done(id)
	}
}

func TestDelegation(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("egress", nil))
		signed := signedFor("PUT", "/_matrix/federation/v1/send/1", "matrix.hoster.de:443", "example.de")
		keys := signedFor("GET", "/_matrix/key/v2/server", "matrix.hoster.de:443", "")
		tunnel := [][2]string{{":method", "CONNECT"}, {":authority", "matrix.hoster.de:443"}}

		// Before the homeserver resolved example.de, its host is unknown.
		e.expectEgress("signed for example.de, before", signed, false)
		e.expectEgress("key fetch, before", keys, false)
		e.expectEgress("tunnel, before", tunnel, false)

		// Answers that delegate nothing.
		e.wellKnown("example.de", 404, `{"m.server":"matrix.hoster.de:443"}`)
		e.wellKnown("example.de", 200, `{"m.server":"matrix.hoster.de:443"`)
		e.wellKnown("example.de", 200, `{"m.server":"matrix.hoster.de:443","x":"`+strings.Repeat("y", 5000)+`"}`)
		e.wellKnown("example.de", 200, `{"m.server":"matrix.hoster.de:443/x"}`)
		e.wellKnown("example.de", 200, `{"m.server":["matrix.hoster.de:443"]}`)
		e.wellKnown("example.de", 200, ``)
		e.wellKnownEncoded("example.de", 200, "gzip", `{"m.server":"matrix.hoster.de:443"}`)
		e.wellKnown("example.de", 200, `{"m.server":"127.0.0.1:8448"}`)
		e.wellKnown("example.de", 200, `{"m.server":"[::1]:8448"}`)
		e.expectEgress("an address example.de named", signedFor("PUT", "/_matrix/federation/v1/send/5", "127.0.0.1:8448", "example.de"), false)
		e.expectEgress("an IPv6 address example.de named", signedFor("PUT", "/_matrix/federation/v1/send/6", "[::1]:8448", "example.de"), false)
		// A server outside the federation never gets its lookup through.
		if o := e.wellKnown("evil.de", 200, `{"m.server":"matrix.hoster.de:443"}`); o.status != 403 {
			t.Fatalf("well-known lookup of a server outside the federation: %+v", o)
		}
		e.expectEgress("signed for example.de, after answers that delegate nothing", signed, false)

		// example.de delegates to matrix.hoster.de.
		if o := e.wellKnown("example.de", 200, `{"m.server": "Matrix.Hoster.de:443"}`); !o.passed {
			t.Fatalf("well-known lookup: %+v", o)
		}
		e.expectEgress("signed for example.de", signed, true)
		e.expectEgress("signed for example.de with port", signedFor("GET", "/_matrix/federation/v1/version", "matrix.hoster.de:8448", "example.de:8448"), true)
		e.expectEgress("key fetch", keys, true)
		e.expectEgress("tunnel", tunnel, true)
		// B4 stays closed: the host stands for example.de only.
		e.expectEgress("signed for partner.de, which did not delegate", signedFor("PUT", "/_matrix/federation/v1/send/2", "matrix.hoster.de:443", "partner.de"), false)
		e.expectEgress("signed for a server outside the federation", signedFor("PUT", "/_matrix/federation/v1/send/3", "matrix.hoster.de:443", "evil.de"), false)
		e.expectEgress("another host", signedFor("PUT", "/_matrix/federation/v1/send/1", "other.hoster.de:443", "example.de"), false)
		// A federated host that serves another federated server.
		e.expectEgress("partner.de for example.de, before", signedFor("PUT", "/_matrix/federation/v1/send/4", "partner.de", "example.de"), false)
		e.wellKnown("example.de", 200, `{"m.server":"partner.de:8448"}`)
		e.expectEgress("partner.de for example.de", signedFor("PUT", "/_matrix/federation/v1/send/4", "partner.de", "example.de"), true)
		e.expectEgress("matrix.hoster.de still serves example.de (homeservers cache the old answer)", signed, true)

		// A record lives 48 h after the last answer that named it.
		e.clk.advance(47 * time.Hour)
		e.wellKnown("example.de", 200, `{"m.server":"matrix.hoster.de"}`)
		e.clk.advance(2 * time.Hour)
		tickAndConfirm(e)
		e.expectEgress("renewed", signed, true)
		e.expectEgress("partner.de's record expired", signedFor("PUT", "/_matrix/federation/v1/send/4", "partner.de", "example.de"), false)
		e.clk.advance(47 * time.Hour)
		tickAndConfirm(e)
		e.expectEgress("expired", signed, false)
	})
}

// tickAndConfirm lets the filter read the clock and confirms its list.
func tickAndConfirm(e *env) {
	e.h.tick()
	for _, c := range e.h.callouts() {
		e.h.respond(c, 204, nil, nil)
	}
}

// TestDelegationSharedByVMs: the worker that saw the well-known answer need
// not be the one that gets the next request (Envoy runs one VM per worker
// thread; they share the table through shared data).
func TestDelegationSharedByVMs(t *testing.T) {
	clk := &clock{t: baseTime}
	rt := newWasmRuntime(t, clk)
	var vms []*env
	for i := 0; i < 2; i++ {
		e := &env{t: t, clk: clk, h: newWasmHost(t, rt)}
		e.start(config("egress", nil))
		vms = append(vms, e)
	}
	signed := signedFor("PUT", "/_matrix/federation/v1/send/1", "matrix.hoster.de:443", "example.de")
	vms[1].expectEgress("before", signed, false)
	vms[0].wellKnown("example.de", 200, `{"m.server":"matrix.hoster.de:443"}`)
	vms[1].expectEgress("after, on the other VM", signed, true)
}

// TestDelegationBucketBounded: a bucket keeps at most its capacity of
// records; the newest always goes in.
func TestDelegationBucketBounded(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		// Twelve servers delegate to one host: one bucket.
		var servers []string
		for i := 0; i < 12; i++ {
			d := "s" + itoa(i) + ".de"
			servers = append(servers, d)
		}
		if !e.h.startPlugin(config("egress", nil)) {
			t.Fatal("start")
		}
		e.answerList(200, signedList(t, pki, 1, append(listV1, servers...)...))
		e.answerPolicy(200, policyDoc)
		for _, d := range servers {
			e.clk.advance(time.Minute)
			e.wellKnown(d, 200, `{"m.server":"shared.hoster.de"}`)
		}
		tickAndConfirm(e)
		passed := 0
		for _, d := range servers {
			id, o := e.do(signedFor("PUT", "/_matrix/federation/v1/send/1", "shared.hoster.de", d), "")
			if o.status == 0 && !o.passed {
				o = e.settle(id)
			}
			if o.passed {
				passed++
			}
			e.h.done(id)
		}
		if passed != 8 {
			t.Fatalf("%d of 12 servers still delegate, want the bucket's 8", passed)
		}
		id, o := e.do(signedFor("PUT", "/_matrix/federation/v1/send/1", "shared.hoster.de", servers[11]), "")
		e.expect("the newest record", o, 0, "", "")
		e.h.done(id)
	})
}
