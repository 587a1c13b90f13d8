package server_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/internal/regstack"
	"github.com/timfd/fachdienst/standin/idp"
)

// fakeDendriteAdmin answers Dendrite's resetPassword admin route for the admin token "hs-admin" and
// records the users it was called for.
type fakeDendriteAdmin struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeDendriteAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer hs-admin" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	mxid, _ := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/_dendrite/admin/resetPassword/"))
	f.mu.Lock()
	f.calls = append(f.calls, mxid)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"password_updated": true}`))
}

func policyData(t *testing.T, e *env) (string, map[string]bool) {
	t.Helper()
	status, _, body := do(t, "GET", e.internal+"/internal/v1/policy", map[string]string{"Authorization": "Bearer " + secret}, "")
	if status != http.StatusOK {
		t.Fatalf("policy: %d", status)
	}
	var p struct {
		Revision string `json:"revision"`
		Data     struct {
			Config struct {
				BlockedUsers map[string]bool `json:"blocked_users"`
			} `json:"config"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p.Revision, p.Data.Config.BlockedUsers
}

// registrationConfig enables the registration service with a fake Dendrite admin API, a throw-away
// C.FD.SIG and an IDP stand-in.
func registrationConfig(t *testing.T) (*fakeDendriteAdmin, func(*config.Config)) {
	admin := &fakeDendriteAdmin{}
	keyFile, certFile, err := regstack.LocalSigner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issuer := startIDP(t)
	return admin, func(c *config.Config) {
		c.Registration.OIDC = config.RegistrationOIDC{Issuer: issuer, ClientID: "reg", ClientSecret: "s"}
		// The homeserver's admin API in front of the stand-in.
		mux := http.NewServeMux()
		mux.Handle("/_dendrite/admin/", admin)
		hs, _ := url.Parse(c.Homeserver.URL)
		mux.Handle("/", httputilProxy(hs))
		fs := httptest.NewServer(mux)
		t.Cleanup(fs.Close)
		c.Homeserver.URL = fs.URL
		c.UserBlock = config.UserBlock{HomeserverKind: "dendrite", AdminToken: "hs-admin"}
		c.Policy.OwnDomains = []string{"home.de"}
		c.Registration.Enabled = true
		c.Registration.PublicURL = "https://reg.example"
		c.Registration.SecretKey = "server-test-secret-key-0123456789abcdef"
		c.Registration.KIM.Enabled = false
		c.RegToken = config.RegToken{Alg: "BP256R1", KeyFile: keyFile, CertFile: certFile, Issuer: "https://reg.example/orgadmin/api/v1/token",
			Audience: "https://vzd.example/owner-authenticate", Lifetime: c.RegToken.Lifetime}
	}
}

// With registration enabled the control plane builds the token signer, the user blocker (whose set
// reaches the proxies as policy data) and the organisation check (operator routes on the internal
// listener).
func TestRegistrationPartsWired(t *testing.T) {
	admin, mutate := registrationConfig(t)
	e := setup(t, mutate)
	if e.srv.Tokens == nil || e.srv.UserBlock == nil || e.srv.OrgCheck == nil {
		t.Fatalf("parts: tokens %v, blocker %v, check %v", e.srv.Tokens != nil, e.srv.UserBlock != nil, e.srv.OrgCheck != nil)
	}
	rev0, set := policyData(t, e)
	if len(set) != 0 {
		t.Fatalf("blocked set at start: %v", set)
	}
	ctx := context.Background()
	if err := e.srv.UserBlock.Block(ctx, "@nurse:home.de"); err != nil {
		t.Fatal(err)
	}
	rev1, set := policyData(t, e)
	if rev1 == rev0 || !set["@nurse:home.de"] || len(set) != 1 {
		t.Fatalf("after block: revision %s (before %s), set %v", rev1, rev0, set)
	}
	if admin.calls == nil || admin.calls[0] != "@nurse:home.de" {
		t.Fatalf("homeserver admin calls: %v", admin.calls)
	}
	if err := e.srv.UserBlock.Block(ctx, "@doc:other.de"); err == nil {
		t.Fatal("a user of another homeserver was blocked")
	}
	if err := e.srv.UserBlock.Unblock(ctx, "@nurse:home.de"); err != nil {
		t.Fatal(err)
	}
	if _, set := policyData(t, e); len(set) != 0 {
		t.Fatalf("after unblock: %v", set)
	}
	// The organisation check's operator routes: internal listener, behind the shared secret.
	if status, _, body := do(t, "POST", e.internal+"/admin/v1/organisations/check", map[string]string{"Authorization": "Bearer " + secret}, ""); status != http.StatusOK || !strings.Contains(body, `"Checked":0`) {
		t.Fatalf("org check: %d %s", status, body)
	}
	if status, _, _ := do(t, "POST", e.internal+"/admin/v1/organisations/check", nil, ""); status != http.StatusUnauthorized {
		t.Fatalf("org check without secret: %d", status)
	}
	if status, _, _ := do(t, "POST", e.internal+"/admin/v1/organisations/1-x/decommission", map[string]string{"Authorization": "Bearer " + secret}, ""); status != http.StatusNotFound {
		t.Fatalf("decommission of an unknown organisation: %d", status)
	}

	// The check over the registration tables: an organisation whose service the VZD reports inactive.
	st := e.srv.Store
	now := time.Now()
	if err := st.CreateOrgAdmin(ctx, store.OrgAdmin{ID: "a1", TelematikID: "1-home", Username: "home-admin", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateOrgService(ctx, store.OrgService{Domain: "home.de", TelematikID: "1-home", Status: store.ServiceActive, OrderedAt: now}); err != nil {
		t.Fatal(err)
	}
	e.vzd.SetInactive("home.de", true)
	auth := map[string]string{"Authorization": "Bearer " + secret}
	// No SMTP configured: the Org-Admin's mail fails and is retried by the next run.
	if status, _, body := do(t, "POST", e.internal+"/admin/v1/organisations/check", auth, ""); status != http.StatusOK ||
		!strings.Contains(body, `"Checked":1`) || !strings.Contains(body, `"Inactive":1`) || !strings.Contains(body, `"Failures":1`) {
		t.Fatalf("org check: %d %s", status, body)
	}
	oc, err := st.OrgCheckByTelematikID(ctx, "1-home")
	if err != nil || oc.InactiveSince.IsZero() || oc.Notified || oc.Suspended != "" {
		t.Fatalf("stored check state: %+v, %v", oc, err)
	}
	if status, _, body := do(t, "POST", e.internal+"/admin/v1/organisations/1-home/decommission", auth, ""); status != http.StatusOK {
		t.Fatalf("decommission: %d %s", status, body)
	}
	for _, d := range e.vzd.Domains() {
		if d.Domain == "home.de" {
			t.Fatal("the decommissioned organisation's domain is still in the federation")
		}
	}
	if list, _ := st.OrgServices(ctx, "1-home"); len(list) != 0 {
		t.Fatalf("services after decommissioning: %+v", list)
	}
	if oc, _ := st.OrgCheckByTelematikID(ctx, "1-home"); oc.Suspended != "decommissioned" {
		t.Fatalf("check state after decommissioning: %+v", oc)
	}
}

func httputilProxy(u *url.URL) http.Handler { return httputil.NewSingleHostReverseProxy(u) }

// Replicas sharing a database: a block made through one reaches the other's policy data when it
// re-reads the set (every blockSyncInterval while serving).
func TestBlockedSetSharedByReplicas(t *testing.T) {
	_, mutate := registrationConfig(t)
	db := filepath.Join(t.TempDir(), "shared.db")
	shared := func(c *config.Config) { mutate(c); c.Storage.SQLitePath = db }
	a, b := setup(t, shared), setup(t, shared)
	ctx := context.Background()
	if err := a.srv.UserBlock.Block(ctx, "@nurse:home.de"); err != nil {
		t.Fatal(err)
	}
	if _, set := policyData(t, b); len(set) != 0 {
		t.Fatalf("replica b before re-reading: %v", set)
	}
	if changed, err := b.srv.UserBlock.Sync(ctx); !changed || err != nil {
		t.Fatalf("sync: %v %v", changed, err)
	}
	revA, setA := policyData(t, a)
	revB, setB := policyData(t, b)
	if !setB["@nurse:home.de"] || revA != revB || len(setA) != 1 {
		t.Fatalf("replicas: a %s %v, b %s %v", revA, setA, revB, setB)
	}
}

// startIDP serves an IDP stand-in that knows the registration service's client "reg" and returns
// its issuer URL; the listener comes first because the issuer names its own address.
func startIDP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + l.Addr().String()
	p, err := idp.New(idp.Config{Issuer: issuer, Clients: []idp.Client{{ID: "reg", Secret: "s", RedirectURIs: []string{"https://reg.example/orgadmin/onboarding/oidc/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	isrv := &httptest.Server{Listener: l, Config: &http.Server{Handler: p}}
	isrv.Start()
	t.Cleanup(isrv.Close)
	return issuer
}
