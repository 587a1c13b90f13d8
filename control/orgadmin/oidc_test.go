package orgadmin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/standin/idp"
)

// The whole way of an organisation: SMC-B onboarding, account, order, operator approval, block, token.
func TestOIDCOnboardingToServices(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	secret := b.onboardOIDC("praxis-admin")

	a, err := e.st.OrgAdminByTelematikID(context.Background(), praxis.IDNummer)
	if !strings.HasPrefix(a.TOTPSecret, "v1:") || strings.Contains(a.TOTPSecret, secret) {
		t.Fatalf("TOTP secret stored in the clear: %q", a.TOTPSecret)
	}
	if err != nil || a.ProfessionOID != praxis.ProfessionOID || a.OrgName != praxis.OrganizationName || a.AuthMethod != "oidc" || a.Username != "praxis-admin" {
		t.Fatalf("stored admin = %+v, %v", a, err)
	}
	if strings.Contains(a.PasswordHash, goodPassword) || !strings.HasPrefix(a.PasswordHash, "$argon2id$") {
		t.Fatal("password not stored as Argon2id hash")
	}

	// Order: pending, not yet in the federation (A_23521).
	want(t, b.get("/orgadmin/services"), http.StatusOK)
	want(t, b.post("/orgadmin/services", url.Values{"domain": {"Messenger.Praxis-Beispiel.de"}}), http.StatusOK, "messenger.praxis-beispiel.de", ">pending<")
	if _, ok := e.federation()["messenger.praxis-beispiel.de"]; ok {
		t.Fatal("a pending order must not be in the federation")
	}
	// Operator approves out of band: entered with telematikID and isInsurance.
	resp, err := http.Post(e.opURL+"/internal/v1/registration/services/messenger.praxis-beispiel.de/approve", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %v %v", resp.StatusCode, err)
	}
	entry, ok := e.federation()["messenger.praxis-beispiel.de"]
	if !ok || entry.TelematikID != praxis.IDNummer || entry.IsInsurance {
		t.Fatalf("federation entry = %+v, %v", entry, ok)
	}
	want(t, b.get("/orgadmin/services"), http.StatusOK, ">active<")

	// Block a user of the organisation's service.
	want(t, b.get("/orgadmin/users"), http.StatusOK)
	want(t, b.post("/orgadmin/users", url.Values{"action": {"block"}, "mxid": {"@alice:messenger.praxis-beispiel.de"}}), http.StatusOK, "The user is blocked.", "@alice:messenger.praxis-beispiel.de")
	// A user of another domain is not the organisation's: refused, the homeserver not asked.
	want(t, b.post("/orgadmin/users", url.Values{"action": {"block"}, "mxid": {"@mallory:other.example.de"}}), http.StatusNotFound, "does not belong")
	if got := e.blocker.Calls(); len(got) != 1 || got[0] != "block @alice:messenger.praxis-beispiel.de" {
		t.Fatalf("blocker calls = %v", got)
	}

	// Token for the organisation's own OID and Telematik-ID.
	want(t, b.get("/orgadmin/token"), http.StatusOK)
	want(t, b.post("/orgadmin/token", nil), http.StatusOK, "eyJ.token-for."+praxis.IDNummer)
	if len(e.tokens.calls) != 1 || e.tokens.calls[0] != [2]string{praxis.ProfessionOID, praxis.IDNummer} {
		t.Fatalf("token calls = %v", e.tokens.calls)
	}

	// Delete: out of the federation, off the list.
	want(t, b.get("/orgadmin/services"), http.StatusOK)
	want(t, b.post("/orgadmin/services/messenger.praxis-beispiel.de/delete", nil), http.StatusOK, "was deleted", "No messenger services yet")
	if _, ok := e.federation()["messenger.praxis-beispiel.de"]; ok {
		t.Fatal("deleted service still in the federation")
	}

	// Sign out, then SMC-B sign-in of the existing Org-Admin.
	want(t, b.post("/orgadmin/logout", nil), http.StatusOK, "Sign in")
	want(t, b.get("/orgadmin/services"), http.StatusOK, "Sign in") // redirected to the login
	want(t, b.post("/orgadmin/login/oidc", nil), http.StatusOK, "Messenger services")
}

// The ID_TOKEN algorithms of the IDP: BP256R1 as gematik's central IDP signs, and the common ones.
var idpAlgs = []string{idp.AlgBP256R1, idp.AlgES256, idp.AlgRS256}

// Every ID_TOKEN defect and refused organisation ends in a refusal that names the reason, and
// nothing is created, whatever the IDP signs with.
func TestOIDCRefusals(t *testing.T) {
	for _, alg := range idpAlgs {
		t.Run(alg, func(t *testing.T) { testOIDCRefusals(t, alg) })
	}
}

func testOIDCRefusals(t *testing.T, alg string) {
	e := newEnv(t, withIDPAlg(alg))
	cases := []struct {
		name     string
		faults   idp.Faults
		identity idp.Identity
		status   int
		message  string
		logged   string // the validation error behind the refusal
	}{
		{"forged signature", idp.Faults{ForgeSignature: true}, praxis, http.StatusUnauthorized, "ID_TOKEN is invalid", "signature"},
		{"expired", idp.Faults{Expired: true}, praxis, http.StatusUnauthorized, "ID_TOKEN is invalid", "expired"},
		{"wrong audience", idp.Faults{Audience: []string{"someone-else"}}, praxis, http.StatusUnauthorized, "ID_TOKEN is invalid", "audience"},
		{"replayed nonce", idp.Faults{Nonce: "nonce-of-an-earlier-sign-in"}, praxis, http.StatusUnauthorized, "ID_TOKEN is invalid", "nonce"},
		{"acr too low", idp.Faults{ACR: "gematik-ehealth-loa-substantial"}, praxis, http.StatusUnauthorized, "ID_TOKEN is invalid", "acr"},
		{"person OID (Tab_PKI_402)", idp.Faults{}, idp.Identity{ProfessionOID: "1.2.276.0.76.4.30", IDNummer: "1-HBA-1", OrganizationName: "Dr. A"}, http.StatusForbidden, "not one of the institutions of Tab_PKI_403", ""},
		{"no professionOID", idp.Faults{}, idp.Identity{IDNummer: "1-x", OrganizationName: "X"}, http.StatusBadRequest, "lacks professionOID", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.idp.SetFaults(tc.faults)
			e.idp.SetIdentity(tc.identity)
			e.logs.Reset()
			b := e.browser()
			want(t, b.get("/orgadmin/"), http.StatusOK)
			p := b.post("/orgadmin/onboarding/oidc", nil)
			want(t, p, tc.status, tc.message)
			if !strings.Contains(strings.ToLower(e.logs.String()), tc.logged) {
				t.Fatalf("refused for another reason than %q: %s", tc.logged, e.logs.String())
			}
			if b.jar.get(e.url, "tim_orgadmin_onboarding") != "" {
				t.Fatal("a refused onboarding must not hand out a ticket")
			}
		})
	}
	e.idp.SetFaults(idp.Faults{})
	if _, err := e.st.OrgAdminByTelematikID(context.Background(), praxis.IDNummer); err != store.ErrNotFound {
		t.Fatalf("admin created by a refused onboarding: %v", err)
	}
}

// A callback answers its state once, and only in the browser that started the sign-in.
func TestOIDCStateReplayAndBinding(t *testing.T) {
	for _, alg := range idpAlgs {
		t.Run(alg, func(t *testing.T) { testOIDCStateReplayAndBinding(t, alg) })
	}
}

func testOIDCStateReplayAndBinding(t *testing.T, alg string) {
	e := newEnv(t, withIDPAlg(alg))
	b := e.browser()
	var callback string
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.Contains(req.URL.Path, "/oidc/callback") {
			callback = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	want(t, b.get("/orgadmin/"), http.StatusOK)
	b.post("/orgadmin/onboarding/oidc", nil)
	if callback == "" {
		t.Fatal("no callback reached")
	}
	// Another browser presenting the callback (login CSRF / stolen code): refused, and the state is spent.
	other := e.browser()
	req, _ := http.NewRequest(http.MethodGet, callback, nil)
	want(t, other.do(req), http.StatusBadRequest, "does not belong to a sign-in started in this browser")
	req, _ = http.NewRequest(http.MethodGet, callback, nil)
	want(t, b.do(req), http.StatusBadRequest, "was answered before")

	// A fresh sign-in completes; replaying its callback afterwards is refused.
	callback = ""
	want(t, b.get("/orgadmin/"), http.StatusOK)
	b.post("/orgadmin/onboarding/oidc", nil)
	b.c.CheckRedirect = nil
	req, _ = http.NewRequest(http.MethodGet, callback, nil)
	want(t, b.do(req), http.StatusOK, "Create the Org-Admin account")
	req, _ = http.NewRequest(http.MethodGet, callback, nil)
	want(t, b.do(req), http.StatusBadRequest, "was answered before")
}

// 5.1.1.2.2: a second initial registration of the same organisation is refused and changes nothing.
func TestSecondRegistrationRefused(t *testing.T) {
	e := newEnv(t)
	e.browser().onboardOIDC("first-admin")
	before, _ := e.st.OrgAdminByTelematikID(context.Background(), praxis.IDNummer)

	b := e.browser()
	want(t, b.get("/orgadmin/"), http.StatusOK)
	want(t, b.post("/orgadmin/onboarding/oidc", nil), http.StatusConflict, "already exists for this organisation")
	after, _ := e.st.OrgAdminByTelematikID(context.Background(), praxis.IDNummer)
	if before != after {
		t.Fatalf("existing account changed: %+v -> %+v", before, after)
	}
	// Two browsers that both got a ticket before either finished: only the first becomes the admin.
	e.idp.SetIdentity(klinik)
	b1, b2 := e.browser(), e.browser()
	for _, x := range []*browser{b1, b2} {
		want(t, x.get("/orgadmin/"), http.StatusOK)
		want(t, x.post("/orgadmin/onboarding/oidc", nil), http.StatusOK, "Create the Org-Admin account")
	}
	b1.createAccount("klinik-one")
	p := b2.post("/orgadmin/account/new", url.Values{"username": {"klinik-two"}, "password": {goodPassword}, "password_confirm": {goodPassword}})
	want(t, p, http.StatusOK, "Set up the second factor")
	secret := secretRe.FindStringSubmatch(p.body)[1]
	code, _ := totpCode(secret, e)
	want(t, b2.post("/orgadmin/account/totp", url.Values{"totp_code": {code}}), http.StatusConflict, "already exists for this organisation")
	a, _ := e.st.OrgAdminByTelematikID(context.Background(), klinik.IDNummer)
	if a.Username != "klinik-one" {
		t.Fatalf("admin of the clinic = %q", a.Username)
	}
}
