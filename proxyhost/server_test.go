package proxyhost_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/proxyhost"
)

// TestServer runs the compiled filter as a reverse proxy in front of an
// upstream, with a control plane serving the real compiled policy, a
// signed federation list and invite-permission answers.
func TestServer(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, policyserve.Operator{ApprovedClientIDs: []string{"tim-client-1.0"}}, "example.de")
	wasm := fx.wasm

	// upstreamHits counts requests whose body the upstream received whole:
	// as in Envoy, the headers of a body route go upstream before the
	// decision, and a refusal resets the request before any body byte.
	var upstreamHits atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		upstreamHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "body": string(b)})
	}))
	defer upstream.Close()
	up, _ := url.Parse(upstream.URL)
	cp := fx.controlPlane(t)
	cfg := fx.pluginConfig("client")
	srv, err := proxyhost.NewServer(ctx, proxyhost.ServerConfig{
		Wasm: wasm, PluginConfig: cfg, Upstream: up,
		Clusters: map[string]*url.URL{"control": cp},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	front := httptest.NewServer(srv)
	defer front.Close()

	do := func(method, path, ua, body string) (int, string) {
		req, _ := http.NewRequest(method, front.URL+path, strings.NewReader(body))
		req.Header.Set("User-Agent", ua)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The filter becomes ready once its callouts have been answered, in
	// each worker's VM (requests go to the workers in turn).
	deadline := time.Now().Add(20 * time.Second)
	for ok := 0; ok < 4; {
		st, _ := do("GET", "/_matrix/client/v3/sync", "App/1,tim-client-1.0", "")
		if st == http.StatusOK {
			ok++
			continue
		}
		ok = 0
		if st != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("filter did not become ready: %d", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	hits := upstreamHits.Load()
	cases := []struct {
		name, method, path, ua, body string
		status                       int
		contains                     string
	}{
		{"allowed createRoom reaches upstream with its body", "POST", "/_matrix/client/v3/createRoom", "App/1,tim-client-1.0", `{"invite":["@a:example.de"]}`, 200, `@a:example.de`},
		{"unapproved client", "GET", "/_matrix/client/v3/sync", "App/1,other", "", 403, "M_FORBIDDEN"},
		{"non-federated invitee", "POST", "/_matrix/client/v3/createRoom", "App/1,tim-client-1.0", `{"invite":["@a:evil.de"]}`, 403, "evil.de could not be invited"},
		{"not JSON", "POST", "/_matrix/client/v3/createRoom", "App/1,tim-client-1.0", `{`, 400, "M_NOT_JSON"},
	}
	for _, c := range cases {
		st, body := do(c.method, c.path, c.ua, c.body)
		if st != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s: got %d %s", c.name, st, body)
		}
	}
	if got := upstreamHits.Load() - hits; got != 1 {
		t.Errorf("upstream saw %d requests, want 1 (only the allowed one)", got)
	}
	// The filter reports its check counters on its ticks (at most a second apart).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, _ := srv.Runtime().Counter("tim_filter_federation_denied")
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("tim_filter_federation_denied = %d", n)
		}
	}
}
