package orgadmin_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/orgcheck"
	"github.com/timfd/fachdienst/control/vzd"
)

type noDirectory struct{}

func (noDirectory) FederationCheck(context.Context) ([]vzd.Domain, error) { return nil, nil }
func (noDirectory) DeleteDomain(context.Context, string) error            { return nil }

type noMailer struct{}

func (noMailer) Send(context.Context, string, string, string, map[string]string) error { return nil }

// A suspended organisation (A_23094) can neither order services, have an order approved nor request a
// token; its Org-Admin's sign-in with the SMC-B lifts a suspension for inactivity, not a
// decommissioning.
func TestSuspendedOrganisation(t *testing.T) {
	orgs := orgcheck.NewMemStore(orgcheck.Organisation{TelematikID: praxis.IDNummer})
	chk, err := orgcheck.New(orgcheck.Options{Store: orgs, Directory: noDirectory{}, Mailer: noMailer{}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(e *env) { e.orgs = chk })
	b := e.browser()
	b.onboardOIDC("praxis-admin")
	want(t, b.get("/orgadmin/services"), http.StatusOK)
	want(t, b.post("/orgadmin/services", url.Values{"domain": {"messenger.praxis-beispiel.de"}}), http.StatusOK, ">pending<")

	ctx := context.Background()
	if err := orgs.SetStatus(ctx, praxis.IDNummer, orgcheck.Status{InactiveSince: time.Unix(1, 0), Notified: true, Suspended: orgcheck.Inactive, SuspendedAt: time.Unix(2, 0)}); err != nil {
		t.Fatal(err)
	}
	want(t, b.get("/orgadmin/services"), http.StatusOK)
	want(t, b.post("/orgadmin/services", url.Values{"domain": {"second.praxis-beispiel.de"}}), http.StatusForbidden, "Your organisation is suspended", "SMC-B")
	want(t, b.get("/orgadmin/token"), http.StatusOK)
	want(t, b.post("/orgadmin/token", nil), http.StatusForbidden, "Your organisation is suspended")
	if len(e.tokens.calls) != 0 {
		t.Fatalf("a token was issued to a suspended organisation: %v", e.tokens.calls)
	}
	resp, err := http.Post(e.opURL+"/internal/v1/registration/services/messenger.praxis-beispiel.de/approve", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("approve for a suspended organisation: %v %v", resp.StatusCode, err)
	}
	if _, ok := e.federation()["messenger.praxis-beispiel.de"]; ok {
		t.Fatal("a suspended organisation's order entered the federation")
	}

	// Re-authentication with the SMC-B.
	want(t, b.post("/orgadmin/logout", nil), http.StatusOK, "Sign in")
	want(t, b.post("/orgadmin/login/oidc", nil), http.StatusOK, "Messenger services")
	if err := chk.Allowed(ctx, praxis.IDNummer); err != nil {
		t.Fatalf("still suspended after the SMC-B sign-in: %v", err)
	}
	want(t, b.post("/orgadmin/services", url.Values{"domain": {"second.praxis-beispiel.de"}}), http.StatusOK, ">pending<")

	// Decommissioned: the SMC-B sign-in does not lift it.
	if err := orgs.SetStatus(ctx, praxis.IDNummer, orgcheck.Status{Suspended: orgcheck.Decommissioned, SuspendedAt: time.Unix(3, 0)}); err != nil {
		t.Fatal(err)
	}
	want(t, b.post("/orgadmin/logout", nil), http.StatusOK, "Sign in")
	want(t, b.post("/orgadmin/login/oidc", nil), http.StatusOK, "Messenger services")
	want(t, b.post("/orgadmin/services", url.Values{"domain": {"third.praxis-beispiel.de"}}), http.StatusForbidden, "decommissioned")
}
