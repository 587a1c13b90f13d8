package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/server"
	"github.com/timfd/fachdienst/standin/homeserver"
	standinvzd "github.com/timfd/fachdienst/standin/vzd"
)

const secret = "internal-secret-0123456789"

type env struct {
	srv      *server.Server
	public   string
	internal string
	vzd      *standinvzd.Server
	hs       *homeserver.Server
}

func setup(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	v, err := standinvzd.New(
		standinvzd.WithDomains(
			standinvzd.Domain{Domain: "home.de", TelematikID: "1-home"},
			standinvzd.Domain{Domain: "other.de", TelematikID: "1-other"},
			standinvzd.Domain{Domain: "kasse.de", TelematikID: "8-kasse", IsInsurance: true},
		),
		standinvzd.WithLocation("@doc:other.de", "pract"),
		standinvzd.WithLocation("@nurse:home.de", "pract"),
		standinvzd.WithLocation("@clinic:home.de", "org"),
	)
	if err != nil {
		t.Fatal(err)
	}
	vsrv := httptest.NewServer(v)
	t.Cleanup(vsrv.Close)
	hs := homeserver.New("home.de", "admin-token")
	hsrv := httptest.NewServer(hs)
	t.Cleanup(hsrv.Close)

	cfg := config.Default()
	cfg.Storage.SQLitePath = filepath.Join(t.TempDir(), "tim.db")
	cfg.Homeserver.URL = hsrv.URL
	cfg.Homeserver.AdminToken = "admin-token"
	cfg.VZD.BaseURL = vsrv.URL
	cfg.VZD.ClientID, cfg.VZD.ClientSecret = "tim-fd", "secret"
	cfg.VZD.SigAlg = "ES256"
	cfg.Internal.SharedSecrets = []string{secret}
	cfg.Policy.Variant = "pro"
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(context.Background(), cfg, server.Deps{
		Logger:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		TrustAnchorPEM: v.TrustAnchorPEM(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pub := httptest.NewServer(s.PublicHandler())
	t.Cleanup(pub.Close)
	in := httptest.NewServer(s.InternalHandler())
	t.Cleanup(in.Close)
	return &env{srv: s, public: pub.URL, internal: in.URL, vzd: v, hs: hs}
}

func do(t *testing.T, method, url string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

func TestHealthReadinessMetrics(t *testing.T) {
	e := setup(t, nil)
	if status, _, body := do(t, "GET", e.public+"/healthz", nil, ""); status != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", status, body)
	}
	// No federation list held yet: not ready.
	status, _, body := do(t, "GET", e.public+"/readyz", nil, "")
	if status != 503 || !strings.Contains(body, `"federation_list":"none held"`) {
		t.Fatalf("readyz before list: %d %s", status, body)
	}
	if err := e.srv.Fed.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _, body := do(t, "GET", e.public+"/readyz", nil, ""); status != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("readyz with list: %d %s", status, body)
	}
	// Storage gone: not ready.
	e.srv.Store.Close()
	if status, _, body := do(t, "GET", e.public+"/readyz", nil, ""); status != 503 || !strings.Contains(body, `"storage":"unreachable"`) {
		t.Fatalf("readyz without storage: %d %s", status, body)
	}
	status, _, body = do(t, "GET", e.public+"/metrics", nil, "")
	if status != 200 || !strings.Contains(body, `tim_control_http_requests_total{listener="public",method="GET",route="/readyz",status="503"} 2`) {
		t.Fatalf("metrics: %d, request counter missing", status)
	}
}

func TestInternalAPIAndInvites(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	if err := e.srv.Fed.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + secret}

	if status, _, _ := do(t, "GET", e.internal+"/internal/v1/federation-list?version=0", nil, ""); status != 401 {
		t.Fatalf("federation list without secret: %d", status)
	}
	status, hdr, body := do(t, "GET", e.internal+"/internal/v1/federation-list?version=0", auth, "")
	if status != 200 || hdr.Get("Content-Type") != "application/jose" || strings.Count(body, ".") != 2 {
		t.Fatalf("federation list: %d %s", status, hdr.Get("Content-Type"))
	}
	version := hdr.Get("X-Federation-Version")
	if status, _, _ := do(t, "GET", e.internal+"/internal/v1/federation-list?version="+version, auth, ""); status != 204 {
		t.Fatalf("current version: %d", status)
	}

	// Release list through the public contact management API, with a token from the homeserver.
	alice := e.hs.AddUser("alice", "pw")
	token := e.hs.IssueOpenIDToken(alice)
	now := time.Now().Unix()
	status, _, body = do(t, "POST", e.public+"/tim-contact-mgmt/v1.0.2/contacts",
		map[string]string{"Authorization": "Bearer " + token, "Mxid": alice, "Content-Type": "application/json"},
		`{"displayName":"Friend","mxid":"@friend:other.de","inviteSettings":{"start":`+itoa(now-60)+`}}`)
	if status != 200 {
		t.Fatalf("create contact: %d %s", status, body)
	}

	cases := []struct {
		name, inviter, invitee string
		want                   map[string]any
	}{
		{"stage 2: released", "@friend:other.de", alice, map[string]any{"allow": true, "stage": float64(2)}},
		{"stage 3: both in person directory", "@doc:other.de", "@nurse:home.de", map[string]any{"allow": true, "stage": float64(3)}},
		{"stage 3: invitee in organisation directory", "@stranger:other.de", "@clinic:home.de", map[string]any{"allow": true, "stage": float64(3)}},
		{"stage 3: unknown invitee", "@doc:other.de", alice, map[string]any{"allow": false, "stage": float64(3)}},
	}
	for _, tc := range cases {
		status, _, body := do(t, "POST", e.internal+"/internal/v1/invite-permission", auth, `{"inviter":"`+tc.inviter+`","invitee":"`+tc.invitee+`"}`)
		var got map[string]any
		json.Unmarshal([]byte(body), &got)
		if status != 200 || got["allow"] != tc.want["allow"] || got["stage"] != tc.want["stage"] || got["reason"] == "" {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	// TI-M Pro: the invitee's permission configuration from the homeserver's account data.
	e.hs.SetAccountData("@clinic:home.de", "de.gematik.tim.account.permissionconfig.pro.v1", map[string]any{"defaultSetting": "block all"})
	status, _, body = do(t, "POST", e.internal+"/internal/v1/invite-permission", auth, `{"inviter":"@stranger:other.de","invitee":"@clinic:home.de"}`)
	if status != 200 || !strings.Contains(body, `"allow":false`) {
		t.Fatalf("blocked by permission config: %d %s", status, body)
	}
	// TI-M Pro group exception isInsuredPerson: inviters from insurance domains of the federation list.
	e.hs.SetAccountData("@nurse:home.de", "de.gematik.tim.account.permissionconfig.pro.v1",
		map[string]any{"defaultSetting": "block all", "groupExceptions": []any{map[string]any{"groupName": "isInsuredPerson"}}})
	for inviter, allow := range map[string]string{"@patient:kasse.de": `"allow":true`, "@patient:Kasse.de:8448": `"allow":true`, "@doc:other.de": `"allow":false`} {
		status, _, body = do(t, "POST", e.internal+"/internal/v1/invite-permission", auth, `{"inviter":"`+inviter+`","invitee":"@nurse:home.de"}`)
		if status != 200 || !strings.Contains(body, allow) {
			t.Fatalf("group exception, inviter %s: %d %s", inviter, status, body)
		}
	}
	// VZD down: deny, fail closed (an MXID not cached yet).
	e.vzd.SetFaults(standinvzd.Faults{FailStatus: 503, FailCount: -1})
	status, _, body = do(t, "POST", e.internal+"/internal/v1/invite-permission", auth, `{"inviter":"@new:other.de","invitee":"@nobody:home.de"}`)
	if status != 200 || !strings.Contains(body, `"allow":false`) || !strings.Contains(body, "VZD") {
		t.Fatalf("VZD down: %d %s", status, body)
	}
	if status, _, _ := do(t, "POST", e.internal+"/internal/v1/invite-permission", auth, `{"inviter":"nobody","invitee":"@nurse:home.de"}`); status != 400 {
		t.Fatalf("bad MXID: %d", status)
	}
}

func TestPolicyReloadEndpoint(t *testing.T) {
	e := setup(t, nil)
	if status, _, _ := do(t, "POST", e.internal+"/admin/v1/policy/reload", nil, ""); status != 401 {
		t.Fatalf("reload without secret: %d", status)
	}
	if status, _, _ := do(t, "POST", e.public+"/admin/v1/policy/reload", map[string]string{"Authorization": "Bearer " + secret}, ""); status != 404 {
		t.Fatalf("reload must not be on the public listener: %d", status)
	}
	status, _, body := do(t, "POST", e.internal+"/admin/v1/policy/reload", map[string]string{"Authorization": "Bearer " + secret}, "")
	if status != 200 || !strings.Contains(body, `"revision":"`) || strings.Contains(body, `"revision":""`) {
		t.Fatalf("reload: %d %s", status, body)
	}
}

func TestInternalOnPublicListenerStaysAuthenticated(t *testing.T) {
	e := setup(t, func(c *config.Config) { c.Internal.Listen = "" })
	if status, _, _ := do(t, "GET", e.public+"/internal/v1/policy", nil, ""); status != 401 {
		t.Fatalf("internal API on public listener without secret: %d", status)
	}
	status, _, body := do(t, "GET", e.public+"/internal/v1/policy", map[string]string{"Authorization": "Bearer " + secret}, "")
	if status != 200 || !strings.Contains(body, `"plan"`) {
		t.Fatalf("policy: %d", status)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	e := setup(t, nil)
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, pub, in) }()
	// The federation job fetches the list at once; readiness follows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, _ := do(t, "GET", "http://"+pub.Addr().String()+"/readyz", nil, "")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + pub.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"no VZD", func(c *config.Config) { c.VZD.BaseURL = "" }, "vzd.base_url"},
		{"no secrets", func(c *config.Config) { c.Internal.SharedSecrets = nil }, "shared_secrets"},
		{"short secret", func(c *config.Config) { c.Internal.SharedSecrets = []string{"short"} }, "shorter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Storage.SQLitePath = filepath.Join(t.TempDir(), "tim.db")
			cfg.VZD.BaseURL = "http://127.0.0.1:1"
			cfg.VZD.ClientID, cfg.VZD.ClientSecret = "id", "secret"
			cfg.Internal.SharedSecrets = []string{secret}
			tc.mutate(&cfg)
			_, err := server.New(context.Background(), cfg, server.Deps{TrustAnchorPEM: testAnchor(t), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func testAnchor(t *testing.T) []byte {
	v, err := standinvzd.New()
	if err != nil {
		t.Fatal(err)
	}
	return v.TrustAnchorPEM()
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
