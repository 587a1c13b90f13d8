package orgadmin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/orgadmin"
	"github.com/timfd/fachdienst/standin/idp"
	standin "github.com/timfd/fachdienst/standin/vzd"
)

// seedAdmin onboards the organisation through the IDP stand-in and returns the TOTP secret; the
// clock then moves on one TOTP step, so the next sign-in has a fresh code.
func seedAdmin(t *testing.T, e *env, id idp.Identity, username string) string {
	t.Helper()
	e.idp.SetIdentity(id)
	defer e.idp.SetIdentity(praxis)
	secret := e.browser().onboardOIDC(username)
	e.clock.Advance(30 * time.Second)
	return secret
}

// api calls the JSON API; tok is the bearer session token ("" for none).
func (e *env) api(method, path, tok string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+"/orgadmin/api/v1"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// login signs in over the API with a code for the given offset of 30 s steps and returns the token.
func (e *env) login(username, secret string, step int) string {
	e.t.Helper()
	code, _ := orgadmin.TOTPCode(secret, e.clock.Now().Add(time.Duration(step)*30*time.Second))
	st, out := e.api("POST", "/login", "", map[string]string{"username": username, "password": goodPassword, "totp_code": code})
	if st != http.StatusOK {
		e.t.Fatalf("login: %d %v", st, out)
	}
	return out["token"].(string)
}

func TestPasswordRules(t *testing.T) {
	cases := []struct {
		pw   string
		ok   bool
		rule string
	}{
		{"Kurz-1a", false, "at least 12 characters"},
		{"nurkleinbuchstaben", false, "three of"},
		{"MeinPasswort-2024!", false, "commonly used"},
		{"Aaaa-bbbb-1234-x", false, "four or more times"},
		{"praxis-admin-X9!", false, "username"},
		{"ein langer satz als passphrase ohne ziffern", true, ""},
		{goodPassword, true, ""},
		{"Grüne-Äpfel-im-Garten-3", true, ""},
	}
	for _, tc := range cases {
		probs := orgadmin.PasswordProblems(tc.pw, "praxis-admin", "1-2-ARZT-Praxis01")
		if tc.ok != (len(probs) == 0) {
			t.Fatalf("%q: problems %v, want ok=%v", tc.pw, probs, tc.ok)
		}
		if !tc.ok && !strings.Contains(strings.Join(probs, " "), tc.rule) {
			t.Fatalf("%q: problems %v lack %q", tc.pw, probs, tc.rule)
		}
	}
}

// A weak password is refused where it is set, with the rule it breaks; nothing is stored.
func TestWeakPasswordRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	want(t, b.get("/orgadmin/"), http.StatusOK)
	want(t, b.post("/orgadmin/onboarding/oidc", nil), http.StatusOK, "Create the Org-Admin account")
	p := b.post("/orgadmin/account/new", url.Values{"username": {"praxis"}, "password": {"passwort123"}, "password_confirm": {"passwort123"}})
	want(t, p, http.StatusBadRequest, "does not meet the password rules", "at least 12 characters", "commonly used", `aria-invalid="true"`)
	want(t, b.get("/orgadmin/account/totp"), http.StatusOK, "Create the Org-Admin account") // back to step one: nothing was set
}

func TestLoginLockoutAndTOTPReplay(t *testing.T) {
	e := newEnv(t)
	secret := seedAdmin(t, e, praxis, "praxis-admin")
	code, _ := orgadmin.TOTPCode(secret, e.clock.Now())
	bad := map[string]string{"username": "praxis-admin", "password": "Falsches-Passwort-99", "totp_code": code}

	// Right password, wrong code; right code, wrong password: both fail the same way.
	st, out := e.api("POST", "/login", "", map[string]string{"username": "praxis-admin", "password": goodPassword, "totp_code": "000000"})
	if st != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d %v", st, out)
	}
	for i := 2; i <= 4; i++ {
		if st, _ := e.api("POST", "/login", "", bad); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, st)
		}
	}
	st, out = e.api("POST", "/login", "", bad)
	if st != http.StatusTooManyRequests || !strings.Contains(out["error"].(string), "locked for 1 more minute") {
		t.Fatalf("fifth failure: %d %v", st, out)
	}
	// While locked even the right credentials are refused.
	st, _ = e.api("POST", "/login", "", map[string]string{"username": "praxis-admin", "password": goodPassword, "totp_code": code})
	if st != http.StatusTooManyRequests {
		t.Fatalf("locked: %d", st)
	}
	// Back-off: the next failure after the lockout locks twice as long.
	e.clock.Advance(61 * time.Second)
	st, out = e.api("POST", "/login", "", bad)
	if st != http.StatusTooManyRequests || !strings.Contains(out["error"].(string), "locked for 2 more minute") {
		t.Fatalf("sixth failure: %d %v", st, out)
	}
	e.clock.Advance(121 * time.Second)
	tok := e.login("praxis-admin", secret, 0)
	if tok == "" {
		t.Fatal("no token")
	}
	a, _ := e.st.OrgAdminByUsername(context.Background(), "praxis-admin")
	if a.FailedLogins != 0 || !a.LockedUntil.IsZero() {
		t.Fatalf("success must reset the failures: %+v", a)
	}
	// The same code twice: refused (RFC 6238 5.2).
	code, _ = orgadmin.TOTPCode(secret, e.clock.Now())
	st, _ = e.api("POST", "/login", "", map[string]string{"username": "praxis-admin", "password": goodPassword, "totp_code": code})
	if st != http.StatusUnauthorized {
		t.Fatalf("replayed TOTP code: %d", st)
	}
	// Unknown users get the same answer as wrong passwords.
	st, out = e.api("POST", "/login", "", map[string]string{"username": "nobody", "password": goodPassword, "totp_code": code})
	if st != http.StatusUnauthorized || out["error"] != "Username, password or one-time code is wrong." {
		t.Fatalf("unknown user: %d %v", st, out)
	}
}

// Every state-changing portal form needs the CSRF token and a same-site origin.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	secret := seedAdmin(t, e, praxis, "praxis-admin")
	b := e.browser()
	want(t, b.get("/orgadmin/login"), http.StatusOK)
	code, _ := orgadmin.TOTPCode(secret, e.clock.Now())
	// Without a token even the login is refused.
	want(t, b.post("/orgadmin/login", url.Values{"username": {"praxis-admin"}, "password": {goodPassword}, "totp_code": {code}, "csrf_token": {""}}), http.StatusForbidden, "not sent from this site")
	want(t, b.get("/orgadmin/login"), http.StatusOK)
	want(t, b.post("/orgadmin/login", url.Values{"username": {"praxis-admin"}, "password": {goodPassword}, "totp_code": {code}}), http.StatusOK, "Messenger services")
	if _, err := e.st.OrgServices(context.Background(), praxis.IDNummer); err != nil {
		t.Fatal(err)
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/orgadmin/services", url.Values{"domain": {"evil.example.de"}}},
		{"/orgadmin/services/evil.example.de/delete", nil},
		{"/orgadmin/users", url.Values{"action": {"block"}, "mxid": {"@a:evil.example.de"}}},
		{"/orgadmin/token", nil},
		{"/orgadmin/logout", nil},
		{"/orgadmin/onboarding/oidc", nil},
		{"/orgadmin/login/oidc", nil},
		{"/orgadmin/account/new", url.Values{"username": {"x"}}},
		{"/orgadmin/account/totp", url.Values{"totp_code": {"123456"}}},
	}
	valid := b.csrf()
	for _, p := range posts {
		for _, variant := range []string{"missing", "wrong", "cross-site"} {
			v := url.Values{}
			for k, vs := range p.form {
				v[k] = vs
			}
			req, _ := http.NewRequest(http.MethodPost, e.url+p.path, nil)
			switch variant {
			case "missing":
				v.Set("csrf_token", "")
			case "wrong":
				v.Set("csrf_token", strings.Repeat("a", len(valid)))
			case "cross-site":
				v.Set("csrf_token", valid)
				req.Header.Set("Origin", "https://attacker.example")
			}
			req.Body = io.NopCloser(strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if got := b.do(req); got.status != http.StatusForbidden {
				t.Fatalf("%s (%s): status %d, want 403", p.path, variant, got.status)
			}
		}
	}
	list, _ := e.st.OrgServices(context.Background(), praxis.IDNummer)
	if len(list) != 0 || len(e.tokens.calls) != 0 || len(e.blocker.Calls()) != 0 {
		t.Fatalf("a refused form changed state: %v %v %v", list, e.tokens.calls, e.blocker.Calls())
	}
	// Still signed in: the logout attempts were refused too.
	want(t, b.get("/orgadmin/services"), http.StatusOK, "Sign out")
}

// Another organisation's services and users look like none on every endpoint, and stay untouched.
func TestCrossOrganisationAccess(t *testing.T) {
	e := newEnv(t)
	sa := seedAdmin(t, e, praxis, "praxis-admin")
	sb := seedAdmin(t, e, klinik, "klinik-admin")
	ta, tb := e.login("praxis-admin", sa, 0), e.login("klinik-admin", sb, 0)

	if st, out := e.api("POST", "/services", tb, map[string]string{"domain": "chat.klinikum.de"}); st != http.StatusAccepted {
		t.Fatalf("order: %d %v", st, out)
	}
	if resp, err := http.Post(e.opURL+"/internal/v1/registration/services/chat.klinikum.de/approve", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatal("approve failed")
	}
	checks := []struct {
		method, path string
		body         any
	}{
		{"GET", "/services/chat.klinikum.de", nil},
		{"DELETE", "/services/chat.klinikum.de", nil},
		{"POST", "/users/block", map[string]string{"mxid": "@doc:chat.klinikum.de"}},
		{"POST", "/users/unblock", map[string]string{"mxid": "@doc:chat.klinikum.de"}},
		{"POST", "/users/end-sessions", map[string]string{"mxid": "@doc:chat.klinikum.de"}},
		{"POST", "/users/password", map[string]string{"mxid": "@doc:chat.klinikum.de", "password": "Gruener-Baum-8-Blaetter"}},
	}
	for _, c := range checks {
		if st, out := e.api(c.method, c.path, ta, c.body); st != http.StatusNotFound {
			t.Fatalf("%s %s as another organisation: %d %v", c.method, c.path, st, out)
		}
	}
	if st, out := e.api("GET", "/services", ta, nil); st != 200 || len(out["services"].([]any)) != 0 {
		t.Fatalf("list as another organisation: %v", out)
	}
	if st, out := e.api("POST", "/services", ta, map[string]string{"domain": "chat.klinikum.de"}); st != http.StatusConflict {
		t.Fatalf("ordering a taken domain: %d %v", st, out)
	}
	// Portal: same.
	b := e.browser()
	want(t, b.get("/orgadmin/login"), http.StatusOK)
	code, _ := orgadmin.TOTPCode(sa, e.clock.Now().Add(30*time.Second))
	want(t, b.post("/orgadmin/login", url.Values{"username": {"praxis-admin"}, "password": {goodPassword}, "totp_code": {code}}), http.StatusOK)
	want(t, b.post("/orgadmin/services/chat.klinikum.de/delete", nil), http.StatusNotFound, "no messenger service of that name")
	want(t, b.get("/orgadmin/users"), http.StatusOK)
	want(t, b.post("/orgadmin/users", url.Values{"action": {"block"}, "mxid": {"@doc:chat.klinikum.de"}}), http.StatusNotFound)

	if len(e.blocker.Calls()) != 0 {
		t.Fatalf("homeserver asked for another organisation's user: %v", e.blocker.Calls())
	}
	if _, ok := e.federation()["chat.klinikum.de"]; !ok {
		t.Fatal("the other organisation's domain left the federation")
	}
	if st, out := e.api("GET", "/services/chat.klinikum.de", tb, nil); st != 200 || out["status"] != "active" {
		t.Fatalf("owner's view: %d %v", st, out)
	}
	// Without a session nothing is served.
	if st, _ := e.api("GET", "/services", "", nil); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	if st, _ := e.api("GET", "/services", "forged-token", nil); st != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", st)
	}
}

// The VZD's 409 and 400 leave an order pending with the reason; the operator sees it.
func TestApprovalVZDErrors(t *testing.T) {
	e := newEnv(t)
	inactive := idp.Identity{ProfessionOID: praxis.ProfessionOID, IDNummer: "inactive-1-2-3", OrganizationName: "Alte Praxis"}
	sa := seedAdmin(t, e, praxis, "praxis-admin")
	si := seedAdmin(t, e, inactive, "alt-admin")
	ta, ti := e.login("praxis-admin", sa, 0), e.login("alt-admin", si, 0)
	e.vzd.AddDomain(standinDomain("taken.example.de", "9-other"))
	e.vzd.AddDomain(standin.Domain{Domain: "mine.example.de", TelematikID: praxis.IDNummer, TimAnbieter: "fd"}) // this provider's
	e.api("POST", "/services", ta, map[string]string{"domain": "taken.example.de"})
	e.api("POST", "/services", ta, map[string]string{"domain": "mine.example.de"})
	e.api("POST", "/services", ti, map[string]string{"domain": "alt.example.de"})

	for _, c := range []struct {
		domain string
		status int
		note   string
	}{
		{"taken.example.de", http.StatusConflict, "already registered in the federation"},
		// The VZD's 409 for this provider's entry of the same organisation: the order takes it over.
		{"mine.example.de", http.StatusOK, ""},
		{"alt.example.de", http.StatusBadRequest, "The VZD refused the domain (400)"},
		{"unknown.example.de", http.StatusNotFound, ""},
	} {
		resp, err := http.Post(e.opURL+"/internal/v1/registration/services/"+c.domain+"/approve", "", nil)
		if err != nil || resp.StatusCode != c.status {
			t.Fatalf("approve %s: %v %v", c.domain, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	if st, out := e.api("GET", "/services/taken.example.de", ta, nil); out["status"] != "pending" || !strings.Contains(out["message"].(string), "already registered") {
		t.Fatalf("after 409: %d %v", st, out)
	}
	if _, out := e.api("GET", "/services/mine.example.de", ta, nil); out["status"] != "active" {
		t.Fatalf("after approving the organisation's own entry: %v", out)
	}
	resp, _ := http.Get(e.opURL + "/internal/v1/registration/services?status=pending")
	var list struct {
		Services []orgadmin.OperatorService `json:"services"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Services) != 2 {
		t.Fatalf("operator's pending list: %+v", list)
	}
	// Rejection ends the order without touching the VZD.
	req, _ := http.NewRequest("POST", e.opURL+"/internal/v1/registration/services/alt.example.de/reject", nil)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reject: %d", resp.StatusCode)
	}
	if _, out := e.api("GET", "/services/alt.example.de", ti, nil); out["status"] != "rejected" {
		t.Fatalf("after reject: %v", out)
	}
}

// Only DNS names without port are ordered, lower-cased: the federation list's form of a domain.
func TestOrderDomainValidation(t *testing.T) {
	e := newEnv(t)
	tok := e.login("praxis-admin", seedAdmin(t, e, praxis, "praxis-admin"), 0)
	cases := []struct {
		in, stored string
		status     int
	}{
		{"Chat.Praxis-Beispiel.DE", "chat.praxis-beispiel.de", http.StatusAccepted},
		{" spaced.example.de ", "spaced.example.de", http.StatusAccepted},
		{"", "", http.StatusBadRequest},
		{"localhost", "", http.StatusBadRequest},
		{"x.example.de:8448", "", http.StatusBadRequest},
		{"[::1]", "", http.StatusBadRequest},
		{"192.168.1.10", "", http.StatusBadRequest},
		{"a..example.de", "", http.StatusBadRequest},
		{"a/b.example.de", "", http.StatusBadRequest},
		{"ex ample.de", "", http.StatusBadRequest},
		{strings.Repeat("a", 64) + ".example.de", "", http.StatusBadRequest},
	}
	for _, c := range cases {
		st, out := e.api("POST", "/services", tok, map[string]string{"domain": c.in})
		if st != c.status || c.stored != "" && out["domain"] != c.stored {
			t.Fatalf("%q: %d %v, want %d %q", c.in, st, out, c.status, c.stored)
		}
	}
	if _, out := e.api("GET", "/services", tok, nil); len(out["services"].([]any)) != 2 {
		t.Fatalf("services = %v", out)
	}
}

// A user's new homeserver password (Dendrite: the block replaced it): never while the user is
// blocked, only with the password rules met, only for the organisation's own users.
func TestUserPassword(t *testing.T) {
	e := newEnv(t)
	sa := seedAdmin(t, e, praxis, "praxis-admin")
	ta := e.login("praxis-admin", sa, 0)
	if st, out := e.api("POST", "/services", ta, map[string]string{"domain": "chat.praxis.de"}); st != http.StatusAccepted {
		t.Fatalf("order: %d %v", st, out)
	}
	if resp, err := http.Post(e.opURL+"/internal/v1/registration/services/chat.praxis.de/approve", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatal("approve failed")
	}
	const user, good = "@doc:chat.praxis.de", "Gruener-Baum-8-Blaetter"
	if st, out := e.api("POST", "/users/block", ta, map[string]string{"mxid": user}); st != http.StatusNoContent {
		t.Fatalf("block: %d %v", st, out)
	}
	for _, c := range []struct {
		mxid, pw string
		status   int
	}{
		{user, good, http.StatusConflict},                  // blocked: the password is the block
		{"@other:elsewhere.de", good, http.StatusNotFound}, // not the organisation's
		{"no-mxid", good, http.StatusBadRequest},           //
	} {
		if st, out := e.api("POST", "/users/password", ta, map[string]string{"mxid": c.mxid, "password": c.pw}); st != c.status {
			t.Fatalf("password for %s: %d %v, want %d", c.mxid, st, out, c.status)
		}
	}
	if st, out := e.api("POST", "/users/unblock", ta, map[string]string{"mxid": user}); st != http.StatusNoContent {
		t.Fatalf("unblock: %d %v", st, out)
	}
	if st, out := e.api("POST", "/users/password", ta, map[string]string{"mxid": user, "password": "short"}); st != http.StatusBadRequest {
		t.Fatalf("weak password: %d %v", st, out)
	}
	if st, out := e.api("POST", "/users/password", ta, map[string]string{"mxid": user, "password": good}); st != http.StatusNoContent {
		t.Fatalf("password: %d %v", st, out)
	}
	calls := e.blocker.Calls()
	if len(calls) != 3 || calls[2] != "password "+user+" "+good {
		t.Fatalf("homeserver calls: %v", calls)
	}
}
