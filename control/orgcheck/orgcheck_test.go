package orgcheck_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"time"

	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/control/orgcheck"
	"github.com/timfd/fachdienst/control/vzd"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

type mail struct{ to, subject, text string }

type mailbox struct {
	mu   sync.Mutex
	sent []mail
	fail bool
}

func (m *mailbox) Send(_ context.Context, to, subject, text string, _ map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("smtp: connection refused")
	}
	m.sent = append(m.sent, mail{to, subject, text})
	return nil
}

func (m *mailbox) to(addr string) []mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mail
	for _, x := range m.sent {
		if x.to == addr {
			out = append(out, x)
		}
	}
	return out
}

type fixture struct {
	vzd   *standin.Server
	vc    *vzd.Client
	store *orgcheck.MemStore
	mails *mailbox
	clock *federation.ManualClock
	chk   *orgcheck.Checker
}

// newFixture registers org A (two domains) and org B (one) in the VZD stand-in through the real client.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	sv, err := standin.New(standin.WithClient("fd", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sv)
	t.Cleanup(srv.Close)
	vc, err := vzd.New(vzd.Config{BaseURL: srv.URL, ClientID: "fd", ClientSecret: "s3cret", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []vzd.Domain{{Domain: "a1.example.de", TelematikID: "1-A"}, {Domain: "a2.example.de", TelematikID: "1-A"}, {Domain: "b1.example.de", TelematikID: "1-B"}} {
		if _, err := vc.AddDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{vzd: sv, vc: vc, mails: &mailbox{}, clock: federation.NewManualClock(time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC))}
	f.store = orgcheck.NewMemStore(
		orgcheck.Organisation{TelematikID: "1-A", AdminMail: "admin@a.example.de", Domains: []string{"a1.example.de", "a2.example.de"}},
		orgcheck.Organisation{TelematikID: "1-B", AdminMail: "admin@b.example.de", Domains: []string{"b1.example.de"}},
		orgcheck.Organisation{TelematikID: "1-C", AdminMail: "admin@c.example.de"}, // no service yet
	)
	f.chk, err = orgcheck.New(orgcheck.Options{Store: f.store, Directory: vc, Mailer: f.mails, Clock: f.clock, Provider: "Example Provider",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) run(t *testing.T) orgcheck.Report {
	t.Helper()
	rep, err := f.chk.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// federated lists the domains of the VZD's current federation list.
func (f *fixture) federated(t *testing.T) map[string]bool {
	t.Helper()
	jws, _, err := f.vzd.SignedList("ES256")
	if err != nil {
		t.Fatal(err)
	}
	_, list, err := fedlist.ParseUnverified(jws)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for d := range list.Domains {
		out[d] = true
	}
	return out
}

func (f *fixture) org(t *testing.T, id string) orgcheck.Organisation {
	t.Helper()
	o, err := f.store.Organisation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A_23092–A_23094 over 31 days: informed once, domains deleted after more than 30 days inactive, refused
// until re-authentication.
func TestInactiveOrganisationLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	day := 24 * time.Hour

	if rep := f.run(t); rep.Checked != 2 || rep.Inactive != 0 || len(f.mails.sent) != 0 {
		t.Fatalf("all active: %+v, mails %d", rep, len(f.mails.sent))
	}

	f.vzd.SetInactive("a2.example.de", true) // the VZD reports A's organisation inactive
	f.clock.Advance(day)
	rep := f.run(t)
	if rep.Inactive != 1 || rep.Notified != 1 {
		t.Fatalf("first inactive run: %+v", rep)
	}
	got := f.mails.to("admin@a.example.de")
	if len(got) != 1 || !strings.Contains(got[0].subject, "nicht mehr aktiv") || !strings.Contains(got[0].text, "a1.example.de") ||
		!strings.Contains(got[0].text, "SMC-B") {
		t.Fatalf("mail to A's Org-Admin: %+v", got)
	}
	if len(f.mails.to("admin@b.example.de")) != 0 {
		t.Fatal("B was informed though active")
	}

	// Daily runs up to exactly 30 days of inactivity: no second mail, domains stay.
	for i := 0; i < 30; i++ {
		f.clock.Advance(day)
		if rep := f.run(t); rep.Notified != 0 || rep.Suspended != 0 {
			t.Fatalf("day %d: %+v", i+2, rep)
		}
	}
	if fed := f.federated(t); !fed["a1.example.de"] || !fed["a2.example.de"] {
		t.Fatalf("domains deleted at 30 days: %v", fed)
	}
	if err := f.chk.Allowed(ctx, "1-A"); err != nil {
		t.Fatalf("A refused before the grace period ended: %v", err)
	}

	// More than 30 days: deleted from the federation and refused.
	f.clock.Advance(time.Hour)
	if rep := f.run(t); rep.Suspended != 1 {
		t.Fatalf("after 30 days: %+v", rep)
	}
	fed := f.federated(t)
	if fed["a1.example.de"] || fed["a2.example.de"] || !fed["b1.example.de"] {
		t.Fatalf("federation after deletion: %v", fed)
	}
	a := f.org(t, "1-A")
	if len(a.Domains) != 0 || a.Suspended != orgcheck.Inactive {
		t.Fatalf("A after deletion: %+v", a)
	}
	if got := f.mails.to("admin@a.example.de"); len(got) != 2 || !strings.Contains(got[1].subject, "entfernt") {
		t.Fatalf("deletion mail: %+v", got)
	}
	if err := f.chk.Allowed(ctx, "1-A"); !errors.Is(err, orgcheck.ErrSuspended) || !strings.Contains(err.Error(), "SMC-B") {
		t.Fatalf("Allowed(A) = %v, want ErrSuspended naming the SMC-B", err)
	}
	// Later runs leave a suspended organisation alone.
	f.clock.Advance(day)
	if rep := f.run(t); rep.Checked != 1 || len(f.mails.to("admin@a.example.de")) != 2 {
		t.Fatalf("run after suspension: %+v", rep)
	}

	// Re-authentication with the SMC-B lifts it.
	if err := f.chk.Reinstate(ctx, "1-A"); err != nil {
		t.Fatal(err)
	}
	if err := f.chk.Allowed(ctx, "1-A"); err != nil {
		t.Fatalf("after re-authentication: %v", err)
	}
}

func TestReactivatedOrganisationIsInformedAgainNextTime(t *testing.T) {
	f := newFixture(t)
	f.vzd.SetInactive("b1.example.de", true)
	f.run(t)
	f.clock.Advance(10 * 24 * time.Hour)
	f.vzd.SetInactive("b1.example.de", false)
	if rep := f.run(t); rep.Reactivated != 1 {
		t.Fatalf("reactivation: %+v", rep)
	}
	if b := f.org(t, "1-B"); !b.InactiveSince.IsZero() || b.Notified {
		t.Fatalf("B after reactivation: %+v", b)
	}
	// Inactive again: a new period, a new mail, a new 30 days.
	f.vzd.SetInactive("b1.example.de", true)
	f.clock.Advance(25 * 24 * time.Hour)
	f.run(t)
	f.clock.Advance(25 * 24 * time.Hour)
	if rep := f.run(t); rep.Suspended != 0 {
		t.Fatalf("the earlier period counted: %+v", rep)
	}
	if got := f.mails.to("admin@b.example.de"); len(got) != 2 {
		t.Fatalf("mails to B: %d, want one per period", len(got))
	}
}

func TestFailuresChangeNothingAndAreRetried(t *testing.T) {
	f := newFixture(t)
	f.vzd.SetInactive("b1.example.de", true)

	// The VZD does not answer: no state change.
	f.vzd.SetFaults(standin.Faults{FailStatus: 503, FailCount: -1})
	if _, err := f.chk.Run(context.Background()); err == nil {
		t.Fatal("run with a failing VZD reported success")
	}
	if b := f.org(t, "1-B"); !b.InactiveSince.IsZero() {
		t.Fatalf("state changed on a failed check: %+v", b)
	}
	f.vzd.SetFaults(standin.Faults{})

	// The mail does not go out: marked inactive, not notified; the next run sends it.
	f.mails.fail = true
	if rep := f.run(t); rep.Failures != 1 || rep.Notified != 0 {
		t.Fatalf("mail failure: %+v", rep)
	}
	f.mails.fail = false
	f.clock.Advance(24 * time.Hour)
	if rep := f.run(t); rep.Notified != 1 {
		t.Fatalf("mail retry: %+v", rep)
	}
	if b := f.org(t, "1-B"); b.InactiveSince.Equal(f.clock.Now()) {
		t.Fatal("the inactivity start moved with the retry")
	}
}

func TestDecommission(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.chk.Decommission(ctx, "1-B"); err != nil {
		t.Fatal(err)
	}
	if fed := f.federated(t); fed["b1.example.de"] || !fed["a1.example.de"] {
		t.Fatalf("federation after decommissioning B: %v", fed)
	}
	if err := f.chk.Allowed(ctx, "1-B"); !errors.Is(err, orgcheck.ErrSuspended) {
		t.Fatalf("Allowed(B) = %v", err)
	}
	if err := f.chk.Reinstate(ctx, "1-B"); !errors.Is(err, orgcheck.ErrSuspended) {
		t.Fatalf("Reinstate(B) = %v, want refused", err)
	}
	if got := f.mails.to("admin@b.example.de"); len(got) != 1 || !strings.Contains(got[0].subject, "außer Betrieb") {
		t.Fatalf("decommissioning mail: %+v", got)
	}
	// Repeating it is harmless.
	if err := f.chk.Decommission(ctx, "1-B"); err != nil {
		t.Fatal(err)
	}
	if err := f.chk.Decommission(ctx, "1-unknown"); !errors.Is(err, orgcheck.ErrNotFound) {
		t.Fatalf("unknown organisation: %v", err)
	}
}

// A domain the VZD will not delete (another provider's) keeps the organisation's domain and reports it.
func TestDecommissionReportsRefusedDeletion(t *testing.T) {
	f := newFixture(t)
	f.vzd.AddDomain(standin.Domain{Domain: "foreign.example.de", TelematikID: "1-B", TimAnbieter: "other-provider"})
	f.store.Put(orgcheck.Organisation{TelematikID: "1-B", AdminMail: "admin@b.example.de", Domains: []string{"b1.example.de", "foreign.example.de"}})
	if err := f.chk.Decommission(context.Background(), "1-B"); err == nil {
		t.Fatal("decommissioning reported success though the VZD refused a deletion")
	}
	b := f.org(t, "1-B")
	if b.Suspended != orgcheck.Active || len(b.Domains) != 1 || b.Domains[0] != "foreign.example.de" {
		t.Fatalf("B after a partial decommissioning: %+v", b)
	}
}

// Start checks at once and then every interval, driven by the manual clock.
func TestStartRunsDaily(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.vzd.SetInactive("b1.example.de", true)
	if err := f.chk.Start(ctx, 24*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	for day := 0; day <= 31; day++ {
		if !f.clock.WaitForTimers(1, 5*time.Second) {
			t.Fatalf("day %d: the check did not go to sleep", day)
		}
		f.clock.Advance(24 * time.Hour)
	}
	if !f.clock.WaitForTimers(1, 5*time.Second) {
		t.Fatal("the check stopped")
	}
	if b := f.org(t, "1-B"); b.Suspended != orgcheck.Inactive {
		t.Fatalf("after 32 daily runs B is %+v", b)
	}
	if err := f.chk.Start(ctx, 25*time.Hour, 0); err == nil {
		t.Fatal("an interval over 24 h was accepted")
	}
}

func TestOperatorActionsOverHTTP(t *testing.T) {
	f := newFixture(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	f.chk.RegisterAdmin(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	post := func(path string) (int, string) {
		resp, err := http.Post(srv.URL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	f.vzd.SetInactive("b1.example.de", true)
	if st, body := post("/admin/v1/organisations/check"); st != 200 || !strings.Contains(body, `"Inactive":1`) {
		t.Fatalf("check: %d %s", st, body)
	}
	if st, _ := post("/admin/v1/organisations/1-nobody/decommission"); st != 404 {
		t.Fatalf("unknown organisation: %d", st)
	}
	if st, body := post("/admin/v1/organisations/1-A/decommission"); st != 200 || !strings.Contains(body, "decommissioned") {
		t.Fatalf("decommission: %d %s", st, body)
	}
	if fed := f.federated(t); fed["a1.example.de"] || fed["a2.example.de"] {
		t.Fatalf("A's domains still federated: %v", fed)
	}
	f.vzd.SetFaults(standin.Faults{FailStatus: 503, FailCount: -1})
	if st, _ := post("/admin/v1/organisations/check"); st != 502 {
		t.Fatalf("check with the VZD down: %d", st)
	}
}
