package orgadmin_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/mailer"
	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/orgadmin"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/store/storetest"
	"github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/internal/mailpit"
	"github.com/timfd/fachdienst/standin/idp"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

// Identities of the IDP stand-in.
var (
	praxis = idp.Identity{ProfessionOID: "1.2.276.0.76.4.50", IDNummer: "1-2-ARZT-Praxis01", OrganizationName: "Praxis Dr. Beispiel"}
	klinik = idp.Identity{ProfessionOID: "1.2.276.0.76.4.53", IDNummer: "5-2-KH-Klinik02", OrganizationName: "Klinikum Beispielstadt"}
)

const goodPassword = "Blauer-Himmel-7-Wolken"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recTokens records I_requestToken calls (the signer itself lives elsewhere).
type recTokens struct {
	mu    sync.Mutex
	calls [][2]string
}

func (r *recTokens) IssueToken(_ context.Context, oid, id string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, [2]string{oid, id})
	return "eyJ.token-for." + id, nil
}

// recBlocker records the homeserver actions asked for.
type recBlocker struct {
	mu    sync.Mutex
	calls []string
}

func (r *recBlocker) rec(a, m string) error {
	r.mu.Lock()
	r.calls = append(r.calls, a+" "+m)
	r.mu.Unlock()
	return nil
}
func (r *recBlocker) Block(_ context.Context, m string) error       { return r.rec("block", m) }
func (r *recBlocker) Unblock(_ context.Context, m string) error     { return r.rec("unblock", m) }
func (r *recBlocker) EndSessions(_ context.Context, m string) error { return r.rec("end-sessions", m) }
func (r *recBlocker) SetPassword(_ context.Context, m, pw string) error {
	return r.rec("password", m+" "+pw)
}
func (r *recBlocker) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

type env struct {
	t       *testing.T
	st      *store.Store
	idp     *idp.Server
	vzd     *standin.Server
	h       *orgadmin.Handler
	url     string
	opURL   string
	mail    *mailpit.Sink
	dir     *onboarding.StaticDirectory
	tokens  *recTokens
	blocker *recBlocker
	clock   *clock
	wrap    func(http.Handler) http.Handler
	logs    *syncBuffer
	mailTo  *mailer.Config // overrides the Mailpit relay (e.g. one that is down)
	client  *http.Client   // for the JSON API
	orgs    orgadmin.Organisations
	idpAlg  string // what the IDP stand-in signs ID_TOKENs with; BP256R1, as gematik's IDP, by default
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
func (s *syncBuffer) Reset()         { s.mu.Lock(); s.b.Reset(); s.mu.Unlock() }

type envOpt func(*env)

// withIDPAlg makes the IDP stand-in sign with alg.
func withIDPAlg(alg string) envOpt { return func(e *env) { e.idpAlg = alg } }

// withMail starts Mailpit for the KIM procedure (skipped outside CI when the binary is missing).
func withMail(e *env) {
	bin, err := mailpit.Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			e.t.Fatal(err)
		}
		e.t.Skip(err)
	}
	s, err := mailpit.Start(context.Background(), bin, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Stop)
	e.mail = s
}

func listen(t *testing.T) (net.Listener, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, "http://" + l.Addr().String()
}

func serve(t *testing.T, l net.Listener, h http.Handler) {
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, st: storetest.SQLite(t), client: http.DefaultClient, tokens: &recTokens{}, blocker: &recBlocker{}, clock: &clock{t: time.Now()},
		dir: onboarding.NewStaticDirectory(nil), idpAlg: idp.AlgBP256R1}
	for _, o := range opts {
		o(e)
	}
	ctlL, ctlURL := listen(t)
	idpL, idpURL := listen(t)
	e.url = ctlURL
	var err error
	e.idp, err = idp.New(idp.Config{Issuer: idpURL, Identity: praxis, Alg: e.idpAlg, Clients: []idp.Client{{ID: "regservice", Secret: "regservice-secret", RedirectURIs: []string{ctlURL + "/orgadmin/onboarding/oidc/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, idpL, e.idp)

	e.vzd, err = standin.New(standin.WithClient("fd", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	vsrv := httptest.NewServer(e.vzd)
	t.Cleanup(vsrv.Close)
	vc, err := vzd.New(vzd.Config{BaseURL: vsrv.URL, ClientID: "fd", ClientSecret: "s3cret", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}

	e.logs = &syncBuffer{}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	oc, err := onboarding.NewOIDC(onboarding.OIDCConfig{Issuer: idpURL, ClientID: "regservice", ClientSecret: "regservice-secret",
		RedirectURL: ctlURL + "/orgadmin/onboarding/oidc/callback", ACRValues: []string{"gematik-ehealth-loa-high"}}, e.st, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	o := orgadmin.Options{SecretKey: []byte("test-secret-key-0123456789abcdef-0123"), Store: e.st, OIDC: oc, Federation: vc, Tokens: e.tokens, Blocker: e.blocker, Organisations: e.orgs, Now: e.clock.Now, Logger: log}
	if e.mail != nil || e.mailTo != nil {
		mc := mailer.Config{From: "registrierung@fd.example.de", TLS: "none"}
		if e.mail != nil {
			mc.Host, mc.Port = e.mail.SMTPHost, e.mail.SMTPPort
		}
		if e.mailTo != nil {
			mc = *e.mailTo
		}
		m, err := mailer.New(mc)
		if err != nil {
			t.Fatal(err)
		}
		if o.KIM, err = onboarding.NewKIM(onboarding.KIMConfig{LinkBase: ctlURL + "/orgadmin/onboarding/kim/", TTL: 30 * time.Minute, MaxAttempts: 5}, e.dir, m, e.st, e.clock.Now); err != nil {
			t.Fatal(err)
		}
	}
	if e.h, err = orgadmin.New(o); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = e.h
	if e.wrap != nil {
		h = e.wrap(h)
	}
	serve(t, ctlL, h)
	opSrv := httptest.NewServer(e.h.OperatorHandler())
	t.Cleanup(opSrv.Close)
	e.opURL = opSrv.URL
	return e
}

// federation returns the domains the VZD stand-in holds.
func (e *env) federation() map[string]fedlist.Entry {
	jws, _, err := e.vzd.SignedList("ES256")
	if err != nil {
		e.t.Fatal(err)
	}
	_, list, err := fedlist.ParseUnverified(jws)
	if err != nil {
		e.t.Fatal(err)
	}
	return list.Domains
}

// jar keeps cookies per host like a browser on loopback: Secure cookies count as sent over a
// secure context (as Chromium treats 127.0.0.1).
type jar struct {
	mu sync.Mutex
	m  map[string]map[string]*http.Cookie
}

func (j *jar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.m == nil {
		j.m = map[string]map[string]*http.Cookie{}
	}
	if j.m[u.Host] == nil {
		j.m[u.Host] = map[string]*http.Cookie{}
	}
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.m[u.Host], c.Name)
			continue
		}
		j.m[u.Host][c.Name] = c
	}
}

func (j *jar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.m[u.Host] {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (j *jar) get(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range j.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// browser is a cookie-keeping HTTP client that follows redirects.
type browser struct {
	t    *testing.T
	c    *http.Client
	jar  *jar
	e    *env
	last string // body of the last page
}

func (e *env) browser() *browser {
	j := &jar{}
	return &browser{t: e.t, e: e, jar: j, c: &http.Client{Jar: j, Timeout: 20 * time.Second}}
}

type page struct {
	status int
	url    string
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.last = string(body)
	return page{status: resp.StatusCode, url: resp.Request.URL.String(), body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.url+path, nil)
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf takes the token from the last page.
func (b *browser) csrf() string {
	b.t.Helper()
	m := csrfRe.FindStringSubmatch(b.last)
	if m == nil {
		b.t.Fatalf("no csrf token on the page:\n%s", b.last)
	}
	return m[1]
}

// post submits a form from the last page (with its CSRF token unless the values carry one).
func (b *browser) post(path string, v url.Values) page {
	b.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	if _, ok := v["csrf_token"]; !ok {
		v.Set("csrf_token", b.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func want(t *testing.T, p page, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d at %s, want %d; body:\n%s", p.status, p.url, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("page at %s lacks %q; body:\n%s", p.url, c, p.body)
		}
	}
}

var secretRe = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)

// onboardOIDC runs the SMC-B onboarding and account creation in b; it returns the TOTP secret.
func (b *browser) onboardOIDC(username string) string {
	b.t.Helper()
	want(b.t, b.get("/orgadmin/"), http.StatusOK, "Authenticate with the SMC-B")
	p := b.post("/orgadmin/onboarding/oidc", nil)
	want(b.t, p, http.StatusOK, "Create the Org-Admin account")
	return b.createAccount(username)
}

func (b *browser) createAccount(username string) string {
	b.t.Helper()
	want(b.t, b.get("/orgadmin/account/new"), http.StatusOK, "Create the Org-Admin account")
	p := b.post("/orgadmin/account/new", url.Values{"username": {username}, "password": {goodPassword}, "password_confirm": {goodPassword}})
	want(b.t, p, http.StatusOK, "Set up the second factor")
	m := secretRe.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatal("no TOTP secret on the page")
	}
	code, _ := orgadmin.TOTPCode(m[1], b.e.clock.Now())
	want(b.t, b.post("/orgadmin/account/totp", url.Values{"totp_code": {code}}), http.StatusOK, "Messenger services", "No messenger services yet")
	return m[1]
}

func totpCode(secret string, e *env) (string, error) { return orgadmin.TOTPCode(secret, e.clock.Now()) }

func standinDomain(d, tid string) standin.Domain { return standin.Domain{Domain: d, TelematikID: tid} }
