package contacts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/timfd/fachdienst/control/contacts"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/store/storetest"
)

const (
	alice = "@alice:home.de"
	bob   = "@bob:other.de"
)

var now = time.Unix(1_800_000_000, 0).UTC()

// homeserver answers the OpenID userinfo endpoint for a fixed set of tokens.
type homeserver struct {
	tokens map[string]string
	calls  atomic.Int64
	down   atomic.Bool
}

func (h *homeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	if h.down.Load() {
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	if r.URL.Path != "/_matrix/federation/v1/openid/userinfo" {
		http.NotFound(w, r)
		return
	}
	sub, ok := h.tokens[r.URL.Query().Get("access_token")]
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Access Token unknown or expired"}`)
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"sub": sub})
}

type env struct {
	url string
	hs  *homeserver
	st  *store.Store
	oid *contacts.OpenID
}

func setup(t *testing.T) *env { return setupWith(t, storetest.SQLite(t)) }

func setupWith(t *testing.T, st *store.Store) *env {
	gin.SetMode(gin.TestMode)
	hs := &homeserver{tokens: map[string]string{"tok-alice": alice, "tok-bob": bob, "tok-evil": "not-an-mxid"}}
	hsrv := httptest.NewServer(hs)
	t.Cleanup(hsrv.Close)
	oid := contacts.NewOpenID(hsrv.URL, hsrv.Client(), 100, time.Minute)
	r := gin.New()
	contacts.New(contacts.Options{Store: st, Verifier: oid, MaxPerOwner: 3, MaxBodyBytes: 1024, Provider: "Example", Now: func() time.Time { return now }}).Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{url: srv.URL, hs: hs, st: st, oid: oid}
}

type call struct {
	method, path, token, mxid, body string
}

func (e *env) do(t *testing.T, c call) (int, map[string]any, http.Header) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, e.url+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.mxid != "" {
		req.Header.Set("Mxid", c.mxid)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", c.method, c.path, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func contactJSON(mxid, name string, start int64, end any) string {
	settings := map[string]any{"start": start}
	if end != nil {
		settings["end"] = end
	}
	b, _ := json.Marshal(map[string]any{"displayName": name, "mxid": mxid, "inviteSettings": settings})
	return string(b)
}

func TestEndpoints(t *testing.T) {
	storetest.Each(t, testEndpoints)
}

func testEndpoints(t *testing.T, st *store.Store) {
	for i, v := range contacts.Versions {
		t.Run(v.BasePath, func(t *testing.T) {
			e := setupWith(t, st)
			if i > 0 { // both versions share the backend: start from an empty table
				for _, owner := range []string{alice, bob} {
					list, _ := st.ListContacts(context.Background(), owner, 100)
					for _, c := range list {
						st.DeleteContact(context.Background(), owner, c.Contact)
					}
				}
			}
			base := v.BasePath
			start, end := now.Unix()-60, now.Unix()+3600
			steps := []struct {
				name       string
				call       call
				wantStatus int
				wantCode   string         // errorCode for error answers
				wantBody   map[string]any // subset checked for success answers
			}{
				{"info", call{"GET", base + "/", "tok-alice", "", ""}, 200, "", map[string]any{"version": v.Version}},
				{"no token", call{"GET", base + "/contacts", "", alice, ""}, 401, "UNAUTHORIZED", nil},
				{"unknown token", call{"GET", base + "/contacts", "nope", alice, ""}, 401, "UNAUTHORIZED", nil},
				{"homeserver answers a non-MXID", call{"GET", base + "/contacts", "tok-evil", alice, ""}, 503, "UNAVAILABLE", nil},
				// 1.0.0 has no Mxid header: the token's user is the owner. 1.0.3 requires it.
				{"missing Mxid header", call{"GET", base + "/contacts", "tok-alice", "", ""}, map[bool]int{true: 400, false: 200}[v.MxidHeader],
					map[bool]string{true: "BAD_REQUEST"}[v.MxidHeader], nil},
				{"bad Mxid header", call{"GET", base + "/contacts", "tok-alice", "alice", ""}, 400, "BAD_REQUEST", nil},
				{"foreign owner", call{"GET", base + "/contacts", "tok-bob", alice, ""}, 403, "FORBIDDEN", nil},
				{"empty list", call{"GET", base + "/contacts", "tok-alice", alice, ""}, 200, "", map[string]any{"contacts": []any{}}},
				{"create", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON(bob, "Bob", start, end)}, 200, "",
					map[string]any{"mxid": bob, "displayName": "Bob", "inviteSettings": map[string]any{"start": float64(start), "end": float64(end)}}},
				{"create again", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON(bob, "Bob", start, end)}, 409, "CONFLICT", nil},
				{"create for foreign owner", call{"POST", base + "/contacts", "tok-bob", alice, contactJSON("@carol:c.de", "C", start, nil)}, 403, "FORBIDDEN", nil},
				{"create open-ended", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@carol:c.de", "Carol", start, nil)}, 200, "",
					map[string]any{"mxid": "@carol:c.de", "inviteSettings": map[string]any{"start": float64(start)}}},
				{"bad mxid", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("carol", "C", start, nil)}, 400, "BAD_REQUEST", nil},
				{"mxid without domain", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@carol:", "C", start, nil)}, 400, "BAD_REQUEST", nil},
				{"own mxid", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON(alice, "me", start, nil)}, 400, "BAD_REQUEST", nil},
				{"end before start", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@d:d.de", "D", start, start-1)}, 400, "BAD_REQUEST", nil},
				{"end equals start", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@d:d.de", "D", start, start)}, 400, "BAD_REQUEST", nil},
				{"window already expired", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@d:d.de", "D", now.Unix()-7200, now.Unix()-3600)}, 400, "BAD_REQUEST", nil},
				{"negative start", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@d:d.de", "D", -5, nil)}, 400, "BAD_REQUEST", nil},
				{"missing start", call{"POST", base + "/contacts", "tok-alice", alice, `{"displayName":"D","mxid":"@d:d.de","inviteSettings":{}}`}, 400, "BAD_REQUEST", nil},
				{"missing displayName", call{"POST", base + "/contacts", "tok-alice", alice, `{"mxid":"@d:d.de","inviteSettings":{"start":1}}`}, 400, "BAD_REQUEST", nil},
				{"start as string", call{"POST", base + "/contacts", "tok-alice", alice, `{"displayName":"D","mxid":"@d:d.de","inviteSettings":{"start":"1654159585"}}`}, 400, "BAD_REQUEST", nil},
				{"not JSON", call{"POST", base + "/contacts", "tok-alice", alice, `{`}, 400, "BAD_REQUEST", nil},
				{"too large", call{"POST", base + "/contacts", "tok-alice", alice, `{"displayName":"` + strings.Repeat("x", 2000) + `"}`}, 413, "TOO_LARGE", nil},
				{"third entry", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@e:e.de", "E", start, nil)}, 200, "", nil},
				{"list full", call{"POST", base + "/contacts", "tok-alice", alice, contactJSON("@f:f.de", "F", start, nil)}, 400, "LIMIT_REACHED", nil},
				{"get one", call{"GET", base + "/contacts/" + bob, "tok-alice", alice, ""}, 200, "", map[string]any{"mxid": bob, "displayName": "Bob"}},
				{"get one percent-encoded", call{"GET", base + "/contacts/%40bob%3Aother.de", "tok-alice", alice, ""}, 200, "", map[string]any{"mxid": bob}},
				{"get unknown", call{"GET", base + "/contacts/@nobody:x.de", "tok-alice", alice, ""}, 404, "NOT_FOUND", nil},
				{"get bad mxid", call{"GET", base + "/contacts/nobody", "tok-alice", alice, ""}, 400, "BAD_REQUEST", nil},
				{"get of foreign list", call{"GET", base + "/contacts/" + bob, "tok-bob", alice, ""}, 403, "FORBIDDEN", nil},
				{"own list of bob is empty", call{"GET", base + "/contacts/" + bob, "tok-bob", bob, ""}, 404, "NOT_FOUND", nil},
				{"update", call{"PUT", base + "/contacts", "tok-alice", alice, contactJSON(bob, "Bob B.", start, nil)}, 200, "", map[string]any{"displayName": "Bob B."}},
				{"update unknown", call{"PUT", base + "/contacts", "tok-alice", alice, contactJSON("@nobody:x.de", "N", start, nil)}, 404, "NOT_FOUND", nil},
				{"update invalid window", call{"PUT", base + "/contacts", "tok-alice", alice, contactJSON(bob, "B", start, start-10)}, 400, "BAD_REQUEST", nil},
				{"update by foreign owner", call{"PUT", base + "/contacts", "tok-bob", alice, contactJSON(bob, "B", start, nil)}, 403, "FORBIDDEN", nil},
				{"delete by foreign owner", call{"DELETE", base + "/contacts/" + bob, "tok-bob", alice, ""}, 403, "FORBIDDEN", nil},
				{"delete from own empty list", call{"DELETE", base + "/contacts/" + bob, "tok-bob", bob, ""}, 404, "NOT_FOUND", nil},
				{"delete bad mxid", call{"DELETE", base + "/contacts/bob", "tok-alice", alice, ""}, 400, "BAD_REQUEST", nil},
				{"delete without token", call{"DELETE", base + "/contacts/" + bob, "", alice, ""}, 401, "UNAUTHORIZED", nil},
				{"delete", call{"DELETE", base + "/contacts/" + bob, "tok-alice", alice, ""}, 204, "", nil},
				{"delete again", call{"DELETE", base + "/contacts/" + bob, "tok-alice", alice, ""}, 404, "NOT_FOUND", nil},
			}
			for _, s := range steps {
				status, body, hdr := e.do(t, s.call)
				if status != s.wantStatus {
					t.Fatalf("%s: status %d, want %d (body %v)", s.name, status, s.wantStatus, body)
				}
				if s.wantCode != "" {
					if body["errorCode"] != s.wantCode || body["errorMessage"] == "" {
						t.Fatalf("%s: body %v, want errorCode %s and a message", s.name, body, s.wantCode)
					}
				}
				if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s: 401 without WWW-Authenticate", s.name)
				}
				for k, want := range s.wantBody {
					if !equalJSON(body[k], want) {
						t.Fatalf("%s: %s = %v, want %v", s.name, k, body[k], want)
					}
				}
			}
			// Stored state: alice keeps carol and e, bob has nothing.
			list, _ := e.st.ListContacts(context.Background(), alice, 10)
			if len(list) != 2 || list[0].Contact != "@carol:c.de" || list[1].Contact != "@e:e.de" {
				t.Fatalf("stored list of alice = %+v", list)
			}
			if list, _ := e.st.ListContacts(context.Background(), bob, 10); len(list) != 0 {
				t.Fatalf("stored list of bob = %+v", list)
			}
			_, body, _ := e.do(t, call{"GET", base + "/contacts", "tok-alice", alice, ""})
			if n := len(body["contacts"].([]any)); n != 2 {
				t.Fatalf("GET list has %d entries, want 2", n)
			}
		})
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestTokenCache(t *testing.T) {
	e := setup(t)
	clock := now
	e.oid.Cache().SetClock(func() time.Time { return clock })
	get := call{"GET", "/tim-contact-mgmt/v1.0/contacts", "tok-alice", alice, ""}
	for range 3 {
		if status, _, _ := e.do(t, get); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if n := e.hs.calls.Load(); n != 1 {
		t.Fatalf("homeserver asked %d times for one token, want 1", n)
	}
	// Cached tokens keep working while the homeserver is down ...
	e.hs.down.Store(true)
	if status, _, _ := e.do(t, get); status != 200 {
		t.Fatalf("cached token: status %d", status)
	}
	// ... until the entry expires; then the API fails closed.
	clock = clock.Add(time.Minute)
	if status, body, _ := e.do(t, get); status != 503 || body["errorCode"] != "UNAVAILABLE" {
		t.Fatalf("expired cache with homeserver down: %d %v", status, body)
	}
	// Invalid tokens are not cached: each is asked anew.
	e.hs.down.Store(false)
	before := e.hs.calls.Load()
	for range 2 {
		e.do(t, call{"GET", "/tim-contact-mgmt/v1.0/contacts", "wrong", alice, ""})
	}
	if n := e.hs.calls.Load() - before; n != 2 {
		t.Fatalf("invalid token asked %d times, want 2", n)
	}
}

func TestRunPurgeStopsWithContext(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	if err := st.CreateContact(ctx, store.Contact{Owner: alice, Contact: bob, Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour)}, 10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		contacts.RunPurge(ctx, st, time.Hour, func() time.Time { return now }, slogDiscard())
		close(done)
	}()
	// The first purge runs at once.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if list, _ := st.ListContacts(context.Background(), alice, 10); len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired entry not purged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
