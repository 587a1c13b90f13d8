//go:build !wasip1

package filter_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

// Fixtures shared by every test: a signing PKI, the compiled policy and its
// data.
var (
	pki        *fedlisttest.PKI
	otherPKI   *fedlisttest.PKI // same shape, different keys: "wrong key"
	policyDoc  []byte
	policyDoc2 []byte // revision r2: also approves tim-client-2.0
	baseTime   = time.Now().Truncate(time.Second)
)

const (
	cluster    = "tim_control"
	authority  = "control.internal"
	secretName = "x-tim-proxy-secret"
	secret     = "s3cret-for-tests"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // proxytest logs every host call
	var err error
	if pki, err = fedlisttest.NewPKI("ES256", fedlisttest.Options{Now: baseTime}); err != nil {
		panic(err)
	}
	if otherPKI, err = fedlisttest.NewPKI("ES256", fedlisttest.Options{Now: baseTime}); err != nil {
		panic(err)
	}
	plan, err := os.ReadFile("testdata/proxy-plan.json")
	if err != nil {
		panic(err)
	}
	data, err := os.ReadFile("testdata/policy-data.json")
	if err != nil {
		panic(err)
	}
	data = withEndpoints(data)
	policyDoc = mustJSON(map[string]any{"revision": "r1", "plan": json.RawMessage(plan), "data": json.RawMessage(data)})
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		panic(err)
	}
	d["config"].(map[string]any)["client_ids"].(map[string]any)["approved"].(map[string]any)["tim-client-2.0"] = true
	policyDoc2 = mustJSON(map[string]any{"revision": "r2", "plan": json.RawMessage(plan), "data": d})
	os.Exit(m.Run())
}

// withEndpoints adds the endpoint tables of policies/data.json (the
// defaults operators start from) to the test data.
func withEndpoints(data []byte) []byte {
	var d, def map[string]any
	def = map[string]any{}
	raw, err := os.ReadFile("../../policies/data.json")
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		panic(err)
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		panic(err)
	}
	d["config"].(map[string]any)["endpoints"] = def["config"].(map[string]any)["endpoints"]
	return mustJSON(d)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// config returns a plugin configuration for role, with overrides.
func config(role string, over map[string]any) []byte {
	c := map[string]any{
		"role": role,
		"control_plane": map[string]any{
			"cluster": cluster, "authority": authority,
			"credential_header": secretName, "credential": secret, "timeout": "2s",
		},
		"trust_anchors":        string(pki.RootPEM()),
		"refresh_interval":     "60s",
		"refetch_min_interval": "10s",
		"max_body_bytes":       2048,
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return mustJSON(c)
}

// signedList is a federation list signed by p.
func signedList(t testing.TB, p *fedlisttest.PKI, version int64, domains ...string) []byte {
	var ds []fedlisttest.Domain
	for _, d := range domains {
		ds = append(ds, fedlisttest.Domain{Domain: d, TelematikID: "1-" + d, TimAnbieter: "TEST"})
	}
	jws, err := p.Sign(fedlisttest.Payload(version, ds))
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

var listV1 = []string{"example.de", "partner.de", "Kasse.DE"}

// env is one filter under test, on one of the two hosts.
type env struct {
	t   *testing.T
	h   host
	clk *clock
}

// both runs fn natively and on the compiled module.
func both(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("native", func(t *testing.T) {
		clk := &clock{t: baseTime}
		fn(t, &env{t: t, clk: clk, h: &lazyNative{clk: clk, t: t}})
	})
	t.Run("wasm", func(t *testing.T) {
		clk := &clock{t: baseTime}
		fn(t, &env{t: t, clk: clk, h: newWasmHost(t, newWasmRuntime(t, clk))})
	})
}

// lazyNative creates the emulator on startPlugin, which is where proxytest
// takes the configuration.
type lazyNative struct {
	*nativeHost
	clk *clock
	t   *testing.T
}

func (l *lazyNative) startPlugin(cfg []byte) bool {
	l.nativeHost = newNativeHost(l.t, l.clk, cfg)
	return l.nativeHost.startPlugin(cfg)
}

// start configures the plugin and answers its first fetches with the
// policy and list v1.
func (e *env) start(cfg []byte) {
	e.t.Helper()
	if !e.h.startPlugin(cfg) {
		e.t.Fatalf("plugin did not start: %v", e.h.logs(proxyhost.LogCritical))
	}
	e.answerList(200, signedList(e.t, pki, 1, listV1...))
	e.answerPolicy(200, policyDoc)
}

// pending returns the unanswered callout whose path starts with prefix.
func (e *env) pending(prefix string) (callout, bool) {
	for _, c := range e.h.callouts() {
		if strings.HasPrefix(c.path, prefix) {
			return c, true
		}
	}
	return callout{}, false
}

func (e *env) mustPending(prefix string) callout {
	e.t.Helper()
	c, ok := e.pending(prefix)
	if !ok {
		e.t.Fatalf("no pending callout to %s (pending: %v)", prefix, e.h.callouts())
	}
	if c.authority != authority || c.header(secretName) != secret {
		e.t.Fatalf("callout without authority or credential: %v", c.headers)
	}
	return c
}

func (e *env) answerList(status int, body []byte) callout {
	e.t.Helper()
	c := e.mustPending("/internal/v1/federation-list")
	e.h.respond(c, status, [][2]string{{"content-type", "application/jose"}}, body)
	return c
}

func (e *env) answerPolicy(status int, body []byte) {
	e.t.Helper()
	c := e.mustPending("/internal/v1/policy")
	e.h.respond(c, status, [][2]string{{"content-type", "application/json"}}, body)
}

// do runs one request; a body is sent in one chunk after the headers.
func (e *env) do(headers [][2]string, body string) (uint32, outcome) {
	id := e.h.newStream()
	e.h.requestHeaders(id, headers, body == "")
	o := e.h.outcome(id)
	if body != "" && o.status == 0 {
		e.h.requestBody(id, []byte(body), true)
		o = e.h.outcome(id)
	}
	return id, o
}

// settle answers a pending list refetch with "no change" and returns the
// final outcome of stream id.
func (e *env) settle(id uint32) outcome {
	if c, ok := e.pending("/internal/v1/federation-list"); ok {
		e.h.respond(c, 204, nil, nil)
	}
	return e.h.outcome(id)
}

func clientReq(method, path string, extra ...[2]string) [][2]string {
	h := [][2]string{{":method", method}, {":path", path}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}}
	return append(h, extra...)
}

func withUA(h [][2]string, ua string) [][2]string {
	out := [][2]string{}
	for _, kv := range h {
		if kv[0] != "user-agent" {
			out = append(out, kv)
		}
	}
	if ua != "" {
		out = append(out, [2]string{"user-agent", ua})
	}
	return out
}

func fedReq(method, path, origin string) [][2]string {
	h := [][2]string{{":method", method}, {":path", path}, {":authority", "home.example.de:8448"}}
	if origin != "" {
		h = append(h, [2]string{"authorization", `X-Matrix origin="` + origin + `",destination="home.example.de",key="ed25519:a",sig="c2ln"`})
	}
	return h
}

func egressReq(method, path, dest string) [][2]string {
	h := [][2]string{{":method", method}, {":path", path}, {":authority", dest}}
	if strings.HasPrefix(path, "/_matrix/federation") {
		h = append(h, [2]string{"authorization", `X-Matrix origin="home.example.de",destination="` + dest + `",key="ed25519:a",sig="c2ln"`})
	}
	return h
}

type errBody struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

func (e *env) expect(name string, o outcome, status int, errcode, text string) {
	e.t.Helper()
	if status == 0 {
		if !o.passed || o.status != 0 {
			e.t.Errorf("%s: want pass, got status %d body %s", name, o.status, o.body)
		}
		return
	}
	if o.status != status {
		e.t.Errorf("%s: want status %d, got %d (passed=%v) body %s", name, status, o.status, o.passed, o.body)
		return
	}
	if o.ctype != "application/json" {
		e.t.Errorf("%s: content-type %q", name, o.ctype)
	}
	var b errBody
	if err := json.Unmarshal([]byte(o.body), &b); err != nil {
		e.t.Errorf("%s: body %q is not JSON", name, o.body)
		return
	}
	if b.Errcode != errcode || (text != "" && b.Error != text) {
		e.t.Errorf("%s: want %s %q, got %s %q", name, errcode, text, b.Errcode, b.Error)
	}
}

type row struct {
	name    string
	headers [][2]string
	body    string
	status  int // 0: passes
	errcode string
	text    string
}

// decisionLines counts the decision-log lines so far.
func decisionLines(e *env) int {
	n := 0
	for _, l := range e.h.logs(proxyhost.LogWarn) {
		if strings.Contains(l, "decision id=") {
			n++
		}
	}
	return n
}

func runRows(t *testing.T, role string, rows []row) {
	both(t, func(t *testing.T, e *env) {
		e.start(config(role, nil))
		for _, r := range rows {
			e.clk.advance(time.Minute)
			// Twice: the second time the decision memo answers, and must
			// answer the same, with its own decision-log line on a denial.
			for _, name := range []string{r.name, r.name + " (repeated)"} {
				logged := decisionLines(e)
				id, o := e.do(r.headers, r.body)
				if o.status == 0 && !o.passed {
					o = e.settle(id)
				}
				e.expect(name, o, r.status, r.errcode, r.text)
				if want := logged + min(r.status, 1); decisionLines(e) != want {
					t.Errorf("%s: %d decision-log lines, want %d", name, decisionLines(e), want)
				}
				e.h.done(id)
			}
			// Keep the list fresh: answer the periodic fetches.
			e.h.tick()
			for _, c := range e.h.callouts() {
				e.h.respond(c, 204, nil, nil)
			}
		}
	})
}

const (
	tooMany     = "An error occurred when starting communication. Please contact your administrator."
	unreachable = "The other party could not be contacted"
)

func TestClientServer(t *testing.T) {
	big := `{"invite":["@a:example.de"],"name":"` + strings.Repeat("x", 3000) + `"}`
	runRows(t, "client", []row{
		{name: "sync with approved client", headers: clientReq("GET", "/_matrix/client/v3/sync")},
		{name: "unknown client id", headers: withUA(clientReq("GET", "/_matrix/client/v3/sync"), "Foo/1.0,evil-client"), status: 403, errcode: "M_FORBIDDEN", text: "This client is not approved for the TI-Messenger"},
		{name: "no client id", headers: withUA(clientReq("GET", "/_matrix/client/v3/sync"), "curl/8.0"), status: 403, errcode: "M_FORBIDDEN"},
		{name: "login with unknown client id", headers: withUA(clientReq("POST", "/_matrix/client/v3/login"), "X/1,evil"), status: 401, errcode: "M_FORBIDDEN"},
		{name: "client id from X-TIM-User-Agent", headers: append(withUA(clientReq("GET", "/_matrix/client/v3/sync"), ""), [2]string{"x-tim-user-agent", "tim-client-1.0"})},
		{name: "exemption /health", headers: withUA(clientReq("GET", "/health"), "")},
		{name: "versions exempt from client id", headers: withUA(clientReq("GET", "/_matrix/client/versions"), "")},
		// Homeservers match literal segments undecoded: no endpoint.
		{name: "escape in a literal segment", headers: withUA(clientReq("GET", "/_matrix/client/%76ersions"), ""), status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "invalid percent-encoding", headers: clientReq("GET", "/_matrix/client/v3/rooms/%zz/state"), status: 400, errcode: "M_UNRECOGNIZED"},
		{name: "invite federated", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":"@bob:example.de"}`},
		{name: "invite own domain", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":"@bob:home.example.de"}`},
		{name: "invite federated, mixed case and port", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":"@bob:kasse.de:8448"}`},
		{name: "invite non-federated", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":"@eve:evil.de"}`, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "invite invalid user id", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":"bob"}`, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "invite malformed JSON", headers: clientReq("POST", "/_matrix/client/v3/rooms/!r:home.example.de/invite"), body: `{"user_id":`, status: 400, errcode: "M_NOT_JSON"},
		{name: "createRoom no invitees", headers: clientReq("POST", "/_matrix/client/v3/createRoom"), body: `{"name":"x"}`},
		{name: "createRoom one federated invitee", headers: clientReq("POST", "/_matrix/client/v3/createRoom"), body: `{"invite":["@a:partner.de"]}`},
		{name: "createRoom two invitees", headers: clientReq("POST", "/_matrix/client/v3/createRoom"), body: `{"invite":["@a:partner.de","@b:example.de"]}`, status: 400, errcode: "M_FORBIDDEN", text: tooMany},
		{name: "createRoom one non-federated invitee", headers: clientReq("POST", "/_matrix/client/v3/createRoom"), body: `{"invite":["@a:evil.de"]}`, status: 403, errcode: "M_FORBIDDEN", text: "evil.de could not be invited"},
		{name: "createRoom not JSON", headers: clientReq("POST", "/_matrix/client/v3/createRoom"), body: `not json`, status: 400, errcode: "M_NOT_JSON"},
		{name: "createRoom over the body cap", headers: clientReq("POST", "/_matrix/client/v3/createRoom"), body: big, status: 413, errcode: "M_TOO_LARGE"},
		{name: "media from federated server", headers: clientReq("GET", "/_matrix/client/v1/media/download/example.de/abc")},
		{name: "media from non-federated server", headers: clientReq("GET", "/_matrix/client/v1/media/download/evil.de/abc"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
	})
}

func TestServerServer(t *testing.T) {
	runRows(t, "federation", []row{
		{name: "federated origin", headers: fedReq("GET", "/_matrix/federation/v1/query/profile?user_id=%40a%3Ahome.example.de", "example.de")},
		{name: "non-federated origin", headers: fedReq("GET", "/_matrix/federation/v1/query/profile", "evil.de"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "missing origin", headers: fedReq("PUT", "/_matrix/federation/v1/send/1", ""), status: 401, errcode: "M_UNAUTHORIZED"},
		{name: "malformed X-Matrix", headers: append(fedReq("PUT", "/_matrix/federation/v1/send/1", ""), [2]string{"authorization", "X-Matrix garbage"}), status: 401, errcode: "M_UNAUTHORIZED"},
		{name: "exempt well-known", headers: fedReq("GET", "/.well-known/matrix/server", "")},
		{name: "exempt openid userinfo", headers: fedReq("GET", "/_matrix/federation/v1/openid/userinfo", "")},
	})
}

func TestEgress(t *testing.T) {
	runRows(t, "egress", []row{
		{name: "to federated destination", headers: egressReq("PUT", "/_matrix/federation/v1/send/1", "example.de")},
		{name: "to non-federated destination", headers: egressReq("PUT", "/_matrix/federation/v1/send/1", "evil.de"), status: 403, errcode: "M_FORBIDDEN", text: unreachable},
		{name: "well-known of non-federated host", headers: egressReq("GET", "/.well-known/matrix/server", "evil.de"), status: 403, errcode: "M_FORBIDDEN"},
		{name: "well-known of federated host", headers: egressReq("GET", "/.well-known/matrix/server", "partner.de")},
	})
}

func fedInvite(invitee string) ([][2]string, string) {
	body := `{"event":{"type":"m.room.member","sender":"@alice:example.de","state_key":"` + invitee + `","content":{"membership":"invite"}},"room_version":"10"}`
	return fedReq("PUT", "/_matrix/federation/v2/invite/!r:example.de/$ev1", "example.de"), body
}

func TestInvitePermission(t *testing.T) {
	cases := []struct {
		name    string
		answer  func(e *env, c callout)
		status  int
		errcode string
	}{
		{"allowed", func(e *env, c callout) {
			e.h.respond(c, 200, nil, []byte(`{"allow":true,"stage":2,"reason":"released"}`))
		}, 0, ""},
		{"refused", func(e *env, c callout) { e.h.respond(c, 200, nil, []byte(`{"allow":false,"stage":3,"reason":"no"}`)) }, 403, "M_FORBIDDEN"},
		{"control plane error", func(e *env, c callout) { e.h.respond(c, 500, nil, []byte(`{}`)) }, 403, "M_FORBIDDEN"},
		{"control plane not answering", func(e *env, c callout) { e.h.fail(c) }, 403, "M_FORBIDDEN"},
		{"garbage answer", func(e *env, c callout) { e.h.respond(c, 200, nil, []byte(`allow`)) }, 403, "M_FORBIDDEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			both(t, func(t *testing.T, e *env) {
				e.start(config("federation", nil))
				h, body := fedInvite("@bob:home.example.de")
				id, o := e.do(h, body)
				if o.status != 0 || o.passed {
					t.Fatalf("invite decided before the control plane answered: %+v", o)
				}
				c := e.mustPending("/internal/v1/invite-permission")
				if c.method != "POST" {
					t.Errorf("method %s", c.method)
				}
				var req map[string]string
				if err := json.Unmarshal(c.body, &req); err != nil || req["inviter"] != "@alice:example.de" || req["invitee"] != "@bob:home.example.de" {
					t.Errorf("callout body %s", c.body)
				}
				tc.answer(e, c)
				e.expect(tc.name, e.h.outcome(id), tc.status, tc.errcode, "")
				if tc.status == 0 {
					if n := e.h.counter("tim_filter_invite_allowed"); n != 1 {
						t.Errorf("tim_filter_invite_allowed = %d", n)
					}
				}
			})
		})
	}
}

func TestNotReady(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		if !e.h.startPlugin(config("client", nil)) {
			t.Fatal("start")
		}
		_, o := e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
		e.expect("before any fetch", o, 503, "M_UNAVAILABLE", "")
		// The control plane does not answer: still closed.
		e.h.fail(e.mustPending("/internal/v1/federation-list"))
		e.answerPolicy(200, policyDoc)
		_, o = e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
		e.expect("policy but no list", o, 503, "M_UNAVAILABLE", "")
		if n := e.h.counter("tim_filter_fedlist_fetch_errors"); n != 1 {
			t.Errorf("fetch errors = %d", n)
		}
		// The next refresh brings the list.
		e.clk.advance(61 * time.Second)
		e.h.tick()
		e.answerList(200, signedList(t, pki, 1, listV1...))
		_, o = e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
		e.expect("ready", o, 0, "", "")
	})
}

func TestBadLists(t *testing.T) {
	wrongAlg := func(t testing.TB) []byte {
		jws, err := fedlisttest.Sign(fedlisttest.Payload(2, nil), "HS256", pki.Leaf.Key, pki.Chain())
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}
	tampered := func(t testing.TB) []byte {
		good := signedList(t, pki, 2, "evil.de")
		parts := strings.Split(string(good), ".")
		other := strings.Split(string(signedList(t, pki, 2, "evil.de", "worse.de")), ".")
		return []byte(parts[0] + "." + other[1] + "." + parts[2])
	}
	expiredCert := func(t testing.TB) []byte {
		// A signer certificate issued by the trusted root that expired an
		// hour ago.
		leafKey, err := fedlisttest.GenerateKey("ES256")
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := fedlisttest.CreateCertificate(fedlisttest.Template{CommonName: "expired signer", Serial: 9, NotBefore: baseTime.Add(-48 * time.Hour), NotAfter: baseTime.Add(-time.Hour)}, leafKey, pki.Root)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := fedlisttest.Sign(fedlisttest.Payload(2, []fedlisttest.Domain{{Domain: "evil.de"}}), "ES256", leafKey, [][]byte{leaf.DER})
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}
	cases := []struct {
		name string
		jws  func(t testing.TB) []byte
	}{
		{"tampered payload", tampered},
		{"wrong key", func(t testing.TB) []byte { return signedList(t, otherPKI, 2, "evil.de") }},
		{"unknown alg", wrongAlg},
		{"expired certificate", expiredCert},
		{"not a JWS", func(testing.TB) []byte { return []byte("hello") }},
		{"older version", func(t testing.TB) []byte { return signedList(t, pki, 0, "evil.de") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			both(t, func(t *testing.T, e *env) {
				e.start(config("client", nil))
				e.clk.advance(61 * time.Second)
				e.h.tick()
				e.answerList(200, tc.jws(t))
				if n := e.h.counter("tim_filter_fedlist_rejected"); n != 1 {
					t.Errorf("rejected = %d", n)
				}
				if !hasLog(e.h.logs(proxyhost.LogError), "rejected") {
					t.Errorf("no rejection logged: %v", e.h.logs(proxyhost.LogError))
				}
				// The last good list (v1) still decides.
				_, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:example.de"]}`)
				e.expect("last good list keeps example.de", o, 0, "", "")
				id, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:evil.de"]}`)
				if o.status == 0 && !o.passed {
					o = e.settle(id)
				}
				e.expect("bad list did not add evil.de", o, 403, "M_FORBIDDEN", "evil.de could not be invited")
			})
		})
	}
	t.Run("first list bad stays closed", func(t *testing.T) {
		both(t, func(t *testing.T, e *env) {
			if !e.h.startPlugin(config("client", nil)) {
				t.Fatal("start")
			}
			e.answerList(200, signedList(t, otherPKI, 1, listV1...))
			e.answerPolicy(200, policyDoc)
			_, o := e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
			e.expect("untrusted first list", o, 503, "M_UNAVAILABLE", "")
		})
	})
}

func hasLog(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func TestListRotationAndRefetch(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		invite := func(domain string) outcome {
			e.t.Helper()
			_, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:`+domain+`"]}`)
			return o
		}
		// Decided once under v1 (and remembered): rotation must undo that.
		e.expect("example.de in v1", invite("example.de"), 0, "", "")
		// A domain missing from v1 makes the filter fetch the list once
		// more before it answers; v2 has it.
		o := invite("new.de")
		if o.status != 0 || o.passed {
			t.Fatalf("missing domain answered before the refetch: %+v", o)
		}
		c := e.answerList(200, signedList(t, pki, 2, "partner.de", "new.de"))
		if !strings.HasSuffix(c.path, "?version=1") {
			t.Errorf("refetch path %s", c.path)
		}
		// Rotation: v2 dropped example.de.
		e.expect("new.de after refetch", lastOutcome(e), 0, "", "")
		o = invite("example.de")
		if o.status == 0 && !o.passed {
			// Refetch is rate-limited: the clock did not move, so no fetch.
			t.Fatalf("second refetch within the interval: %+v", e.h.callouts())
		}
		e.expect("example.de removed by rotation", o, 403, "M_FORBIDDEN", "example.de could not be invited")
		// After the refetch interval a miss may fetch again.
		e.clk.advance(11 * time.Second)
		id, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:later.de"]}`)
		if o.status != 0 || o.passed {
			t.Fatalf("no refetch after the interval: %+v", o)
		}
		e.answerList(200, signedList(t, pki, 3, "later.de"))
		e.expect("later.de in v3", e.h.outcome(id), 0, "", "")
		// The periodic refresh asks with the current version.
		e.clk.advance(61 * time.Second)
		e.h.tick()
		c = e.mustPending("/internal/v1/federation-list")
		if !strings.HasSuffix(c.path, "?version=3") {
			t.Errorf("refresh path %s", c.path)
		}
		e.h.respond(c, 204, nil, nil)
	})
}

// lastOutcome is the outcome of the most recent stream.
func lastOutcome(e *env) outcome {
	switch h := e.h.(type) {
	case *lazyNative:
		return h.outcome(h.streams[len(h.streams)-1])
	case *wasmHost:
		var max uint32
		for id := range h.st {
			if id > max {
				max = id
			}
		}
		return h.outcome(max)
	}
	return outcome{}
}

func TestListTTL(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		req := func() outcome {
			id, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:example.de"]}`)
			if o.status == 0 && !o.passed {
				o = e.settle(id)
			}
			return o
		}
		e.expect("fresh list", req(), 0, "", "")
		// 73 hours pass and the control plane never answers.
		for i := 0; i < 73; i++ {
			e.clk.advance(time.Hour)
			e.h.tick()
			for _, c := range e.h.callouts() {
				e.h.fail(c)
			}
		}
		e.expect("expired list blocks federation", req(), 403, "M_FORBIDDEN", "example.de could not be invited")
		e.expect("own domain still works", func() outcome {
			_, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:home.example.de"]}`)
			return o
		}(), 0, "", "")
		if !hasLog(e.h.logs(proxyhost.LogCritical), "incident") {
			t.Errorf("no incident logged: %v", e.h.logs(proxyhost.LogCritical))
		}
		// The control plane confirms the list again.
		e.clk.advance(time.Hour)
		e.h.tick()
		e.answerList(204, nil)
		e.expect("confirmed again", req(), 0, "", "")
	})
}

func TestPolicyUpdate(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		sync2 := withUA(clientReq("GET", "/_matrix/client/v3/sync"), "X/2,tim-client-2.0")
		_, o := e.do(sync2, "")
		e.expect("client 2.0 not approved in r1", o, 403, "M_FORBIDDEN", "")
		e.clk.advance(61 * time.Second)
		e.h.tick()
		c := e.mustPending("/internal/v1/policy")
		if !strings.HasSuffix(c.path, "?revision=r1") {
			t.Errorf("policy path %s", c.path)
		}
		e.h.respond(c, 200, nil, policyDoc2)
		_, o = e.do(sync2, "")
		e.expect("client 2.0 approved in r2", o, 0, "", "")
		// A broken policy is rejected and r2 stays.
		e.clk.advance(61 * time.Second)
		e.h.tick()
		e.answerPolicy(200, []byte(`{"revision":"r3","plan":{"static":{}},"data":{}}`))
		if n := e.h.counter("tim_filter_policy_rejected"); n != 1 {
			t.Errorf("policy rejected = %d", n)
		}
		_, o = e.do(sync2, "")
		e.expect("r2 still active", o, 0, "", "")
	})
}

func TestInlinePolicy(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		cfg := config("client", map[string]any{"policy": json.RawMessage(policyDoc)})
		if !e.h.startPlugin(cfg) {
			t.Fatalf("start: %v", e.h.logs(proxyhost.LogCritical))
		}
		e.answerList(200, signedList(t, pki, 1, listV1...))
		// No policy answer needed: the inline one decides.
		_, o := e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
		e.expect("inline policy", o, 0, "", "")
	})
}

func TestDryRun(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", map[string]any{"fail_mode": "dry-run"}))
		_, o := e.do(withUA(clientReq("GET", "/_matrix/client/v3/sync"), "X/1,evil"), "")
		e.expect("dry-run passes", o, 0, "", "")
		if n := e.h.counter("tim_filter_client_id_dryrun_denied"); n != 1 {
			t.Errorf("dry-run counter = %d", n)
		}
		if n := e.h.counter("tim_filter_client_id_denied"); n != 0 {
			t.Errorf("denied counter = %d", n)
		}
		if !hasLog(e.h.logs(proxyhost.LogWarn), "outcome=dry-run-deny") {
			t.Errorf("no dry-run decision log: %v", e.h.logs(proxyhost.LogWarn))
		}
	})
}

// TestEndedRequestsAnswer: streams are reused once their request ended; the
// control plane's answer for an ended request must not decide the request
// that reuses its stream, and that request must get its own answer.
func TestEndedRequestsAnswer(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("federation", nil))
		h, body := fedInvite("@bob:home.example.de")
		first, _ := e.do(h, body)
		old := e.mustPending("/internal/v1/invite-permission")
		e.h.done(first)
		second, o := e.do(h, body)
		if o.status != 0 || o.passed {
			t.Fatalf("second invite decided before its answer: %+v", o)
		}
		var own callout
		for _, c := range e.h.callouts() {
			if strings.HasPrefix(c.path, "/internal/v1/invite-permission") && c.key != old.key {
				own = c
			}
		}
		if own.path == "" {
			t.Fatalf("no callout for the second invite (pending: %v)", e.h.callouts())
		}
		e.h.respond(old, 200, nil, []byte(`{"allow":true}`))
		if o := e.h.outcome(second); o.status != 0 || o.passed {
			t.Fatalf("the first request's answer decided the second: %+v", o)
		}
		e.h.respond(own, 200, nil, []byte(`{"allow":false}`))
		e.expect("second invite", e.h.outcome(second), 403, "M_FORBIDDEN", "")
	})
}

// TestPausedRequestKeepsItsHeaders: a request paused for a list fetch is
// decided on its own headers when the list arrives, however many requests
// ended in between (their streams, and the buffers the module reads
// headers into, are reused).
func TestPausedRequestKeepsItsHeaders(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("federation", nil))
		waiting := func(origin string) uint32 {
			t.Helper()
			id, o := e.do(fedReq("GET", "/_matrix/federation/v1/query/profile", origin), "")
			if o.status != 0 || o.passed {
				t.Fatalf("%s decided before the list fetch: %+v", origin, o)
			}
			return id
		}
		a, b := waiting("new.de"), waiting("other.new.de")
		for i := range 20 {
			id, o := e.do(fedReq("GET", "/_matrix/federation/v1/query/profile?n="+strconv.Itoa(i), "partner.de"), "")
			e.expect("partner.de meanwhile", o, 0, "", "")
			e.h.done(id)
		}
		e.answerList(200, signedList(t, pki, 2, "partner.de", "new.de"))
		e.expect("new.de after the fetch", e.h.outcome(a), 0, "", "")
		e.expect("other.new.de after the fetch", e.h.outcome(b), 403, "M_FORBIDDEN", unreachable)
		var line string
		for _, l := range e.h.logs(proxyhost.LogWarn) {
			if strings.Contains(l, "decision id=") {
				line = l
			}
		}
		sum := sha256.Sum256([]byte("other.new.de"))
		if want := "origin=" + hex.EncodeToString(sum[:6]); !strings.Contains(line, want) {
			t.Errorf("decision log %q lacks %s", line, want)
		}
	})
}

// TestRequestWiped: once a request has ended, the module's memory holds
// nothing of its headers (its bearer token in particular) or its body.
func TestRequestWiped(t *testing.T) {
	h := newWasmHost(t, newWasmRuntime(t, &clock{t: baseTime}))
	e := &env{t: t, h: h, clk: &clock{t: baseTime}}
	e.start(config("client", map[string]any{"max_body_bytes": 64 << 10}))
	for i, extra := range []int{0, 100, 20_000} {
		token, name := "syt_wiped_"+strconv.Itoa(i)+"_token", "room_wiped_"+strconv.Itoa(i)+"_name"
		hs := clientReq("POST", "/_matrix/client/v3/createRoom", [2]string{"authorization", "Bearer " + token},
			[2]string{"x-padding", strings.Repeat("p", extra)})
		id, o := e.do(hs, `{"name":"`+name+`","topic":"`+strings.Repeat("t", extra)+`","invite":["@a:example.de"]}`)
		e.expect("createRoom", o, 0, "", "")
		for _, secret := range []string{token, name} {
			if !h.vm.MemoryContains([]byte(secret)) {
				t.Fatalf("request %d: %s not found in guest memory during the request: the test sees nothing", i, secret)
			}
		}
		e.h.done(id)
		for _, secret := range []string{token, name} {
			if h.vm.MemoryContains([]byte(secret)) {
				t.Errorf("request %d (%d bytes of padding): %s still in guest memory after the request ended", i, extra, secret)
			}
		}
	}
}

func TestDecisionLogAndMetrics(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
		id, o := e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@mallory:evil.de"]}`)
		if o.status == 0 && !o.passed {
			o = e.settle(id)
		}
		e.expect("deny", o, 403, "M_FORBIDDEN", "")
		if n := e.h.counter("tim_filter_default_allowed"); n != 1 {
			t.Errorf("default_allowed = %d", n)
		}
		if n := e.h.counter("tim_filter_federation_denied"); n != 1 {
			t.Errorf("federation_denied = %d", n)
		}
		var lines []string
		for _, l := range e.h.logs(proxyhost.LogWarn) {
			if strings.Contains(l, "decision id=") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("want one decision line, got %v", lines)
		}
		for _, secretish := range []string{"@mallory:evil.de", "mallory", "tim-client-1.0"} {
			if strings.Contains(lines[0], secretish) {
				t.Errorf("decision log contains %q in clear: %s", secretish, lines[0])
			}
		}
		if !strings.Contains(lines[0], "check=federation") || !strings.Contains(lines[0], "status=403") {
			t.Errorf("decision log %s", lines[0])
		}
	})
}

func TestInvalidConfig(t *testing.T) {
	cases := []struct {
		name string
		over map[string]any
		want string
	}{
		{"missing role", map[string]any{"role": nil}, "role"},
		{"bad role", map[string]any{"role": "server"}, "role"},
		{"no credential", map[string]any{"control_plane": map[string]any{"cluster": "c", "authority": "a"}}, "credential"},
		{"bad trust anchors", map[string]any{"trust_anchors": "not pem"}, "trust_anchors"},
		{"bad fail mode", map[string]any{"fail_mode": "open"}, "fail_mode"},
		{"bad interval", map[string]any{"refresh_interval": "soon"}, "refresh_interval"},
		{"tiny body cap", map[string]any{"max_body_bytes": 10}, "max_body_bytes"},
		{"unknown field", map[string]any{"rol": "client"}, "rol"},
		{"bad inline plan", map[string]any{"policy": map[string]any{"plan": "x"}}, "policy"},
		{"credential twice", map[string]any{"control_plane": map[string]any{"cluster": "c", "authority": "a", "credential_header": "authorization", "credential": "Bearer x", "credential_env": "TIM_SECRET"}}, "not both"},
		{"credential env unset", map[string]any{"control_plane": map[string]any{"cluster": "c", "authority": "a", "credential_header": "authorization", "credential_env": "TIM_TEST_UNSET_SECRET"}}, "TIM_TEST_UNSET_SECRET"},
		{"trust anchors env unset", map[string]any{"trust_anchors": nil, "trust_anchors_env": "TIM_TEST_UNSET_ANCHORS"}, "TIM_TEST_UNSET_ANCHORS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			both(t, func(t *testing.T, e *env) {
				if e.h.startPlugin(config("client", tc.over)) {
					t.Fatal("plugin started with an invalid configuration")
				}
				logs := e.h.logs(proxyhost.LogCritical)
				if !hasLog(logs, "invalid configuration") || !hasLog(logs, tc.want) {
					t.Errorf("log does not say what is wrong (%s): %v", tc.want, logs)
				}
			})
		})
	}
}

// TestBodyInChunks: the filter buffers until the end of the body and
// bounds what it buffers.
func TestBodyInChunks(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		id := e.h.newStream()
		// Headers go on (Envoy would withhold the body after a pause); the
		// body callback pauses until the end of the body.
		if a := e.h.requestHeaders(id, clientReq("POST", "/_matrix/client/v3/createRoom"), false); a != types.ActionContinue {
			t.Fatalf("headers of a body route must continue, got %v", a)
		}
		if a := e.h.requestBody(id, []byte(`{"invite":[`), false); a != types.ActionPause {
			t.Fatalf("partial body must pause, got %v", a)
		}
		if a := e.h.requestBody(id, []byte(`"@a:partner.de"]}`), true); a != types.ActionContinue {
			t.Fatalf("complete body with a federated invitee must continue, got %v", a)
		}
		e.expect("chunked createRoom", e.h.outcome(id), 0, "", "")
	})
}
