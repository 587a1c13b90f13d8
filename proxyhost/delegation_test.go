package proxyhost_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/proxyhost"
)

// TestServerDelegation runs the compiled filter as the egress of two
// workers: a well-known answer that one worker relays (in two chunks, its
// response callbacks seeing each) lets the other worker's requests to the
// delegated host through, for the delegating server only.
func TestServerDelegation(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, policyserve.Operator{OwnDomains: []string{"home.example.de"}}, "example.de", "partner.de")
	wasm := fx.wasm

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/.well-known/matrix/server" && r.Host == "example.de" {
			io.WriteString(w, `{"m.server":`)
			w.(http.Flusher).Flush()
			io.WriteString(w, `"matrix.hoster.de:443"}`)
			return
		}
		io.WriteString(w, `{"host":"`+r.Host+`"}`)
	}))
	defer upstream.Close()
	up, _ := url.Parse(upstream.URL)
	cp := fx.controlPlane(t)
	cfg := fx.pluginConfig("egress")
	srv, err := proxyhost.NewServer(ctx, proxyhost.ServerConfig{Wasm: wasm, PluginConfig: cfg, Upstream: up, Workers: 2,
		Clusters: map[string]*url.URL{"control": cp}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	front := httptest.NewServer(srv)
	defer front.Close()

	do := func(path, host, dest string) (int, string) {
		req, _ := http.NewRequest("GET", front.URL+path, nil)
		req.Host = host
		if dest != "" {
			req.Header.Set("Authorization", `X-Matrix origin="home.example.de",destination="`+dest+`",key="ed25519:a",sig="c2ln"`)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ok := 0; ok < 4; {
		if st, _ := do("/_matrix/federation/v1/version", "example.de", "example.de"); st == http.StatusOK {
			ok++
			continue
		}
		ok = 0
		if time.Now().After(deadline) {
			t.Fatal("filter did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each request twice: the two workers take requests in turn.
	expect := func(name, path, host, dest string, want int) {
		t.Helper()
		for i := 0; i < 2; i++ {
			if st, body := do(path, host, dest); st != want {
				t.Errorf("%s: %d %s, want %d", name, st, body, want)
			}
		}
	}
	expect("before", "/_matrix/federation/v1/version", "matrix.hoster.de:443", "example.de", 403)
	if st, body := do("/.well-known/matrix/server", "example.de", ""); st != 200 || body != `{"m.server":"matrix.hoster.de:443"}` {
		t.Fatalf("well-known relayed as %d %q", st, body)
	}
	expect("after", "/_matrix/federation/v1/version", "matrix.hoster.de:443", "example.de", 200)
	expect("unsigned key fetch", "/_matrix/key/v2/server", "matrix.hoster.de:443", "", 200)
	expect("another destination", "/_matrix/federation/v1/version", "matrix.hoster.de:443", "partner.de", 403)
}
