package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/store/storetest"
)

func TestOrgAdminOnePerOrganisation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := store.OrgAdmin{ID: "a1", TelematikID: "1-x", ProfessionOID: "1.2.276.0.76.4.50", OrgName: "Praxis", AuthMethod: "oidc",
			Username: "alice", PasswordHash: "h", TOTPSecret: "S", CreatedAt: t0}
		if err := s.CreateOrgAdmin(ctx, a); err != nil {
			t.Fatal(err)
		}
		// Same organisation, other username; same username, other organisation: both refused.
		for _, b := range []store.OrgAdmin{
			{ID: "a2", TelematikID: "1-x", Username: "bob", PasswordHash: "h2", CreatedAt: t0},
			{ID: "a3", TelematikID: "1-y", Username: "alice", PasswordHash: "h3", CreatedAt: t0},
		} {
			if err := s.CreateOrgAdmin(ctx, b); !errors.Is(err, store.ErrExists) {
				t.Fatalf("second admin %+v: %v", b, err)
			}
		}
		got, err := s.OrgAdminByTelematikID(ctx, "1-x")
		if err != nil || got != a {
			t.Fatalf("admin = %+v, %v; want unchanged %+v", got, err, a)
		}
		// Concurrent first registrations: exactly one wins.
		var wg sync.WaitGroup
		wins := make(chan string, 8)
		for i := range 8 {
			wg.Go(func() {
				id := string(rune('a'+i)) + "-c"
				if s.CreateOrgAdmin(ctx, store.OrgAdmin{ID: id, TelematikID: "1-z", Username: id, CreatedAt: t0}) == nil {
					wins <- id
				}
			})
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d concurrent registrations succeeded", len(wins))
		}
		// Login bookkeeping: a TOTP step is taken once.
		if err := s.RecordLoginFailure(ctx, "a1", 5, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.OrgAdminByID(ctx, "a1"); got.FailedLogins != 5 || !got.LockedUntil.Equal(t0.Add(time.Minute)) {
			t.Fatalf("failure not recorded: %+v", got)
		}
		if err := s.RecordLoginSuccess(ctx, "a1", 100); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordLoginSuccess(ctx, "a1", 100); !errors.Is(err, store.ErrUsed) {
			t.Fatalf("step reused: %v", err)
		}
		if got, _ := s.OrgAdminByID(ctx, "a1"); got.FailedLogins != 0 || !got.LockedUntil.IsZero() || got.TOTPLastStep != 100 {
			t.Fatalf("success not recorded: %+v", got)
		}
	})
}

func TestOnboardingStateSingleUse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := store.OIDCPending{State: "st", Nonce: "n", Verifier: "v", BrowserHash: "b", Purpose: "onboard", ExpiresAt: t0.Add(time.Minute)}
		if err := s.PutOIDCPending(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TakeOIDCPending(ctx, "st", t0); err != nil || got != p {
			t.Fatalf("take = %+v, %v", got, err)
		}
		if _, err := s.TakeOIDCPending(ctx, "st", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second take: %v", err)
		}
		s.PutOIDCPending(ctx, store.OIDCPending{State: "old", ExpiresAt: t0})
		if _, err := s.TakeOIDCPending(ctx, "old", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired take: %v", err)
		}

		c := store.KIMChallenge{ID: "u1", CodeHash: "h", TelematikID: "1-x", ProfessionOID: "o", OrgName: "n", ExpiresAt: t0.Add(time.Hour)}
		if err := s.PutKIMChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := s.CountKIMAttempt(ctx, "u1", 3); err != nil {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		if err := s.CountKIMAttempt(ctx, "u1", 3); !errors.Is(err, store.ErrLimit) {
			t.Fatalf("fourth attempt: %v", err)
		}
		if err := s.UseKIMChallenge(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if err := s.UseKIMChallenge(ctx, "u1"); !errors.Is(err, store.ErrUsed) {
			t.Fatalf("second use: %v", err)
		}
		if got, _ := s.GetKIMChallenge(ctx, "u1"); !got.Used || got.Attempts != 3 {
			t.Fatalf("challenge = %+v", got)
		}

		tk := store.OnboardingTicket{TokenHash: "th", TelematikID: "1-x", ProfessionOID: "o", OrgName: "n", AuthMethod: "kim", ExpiresAt: t0.Add(time.Hour)}
		s.PutOnboardingTicket(ctx, tk)
		if err := s.SetTicketCredentials(ctx, "th", "alice", "ph", "SEC"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.OnboardingTicketByHash(ctx, "th", t0); err != nil || got.Username != "alice" || got.TOTPSecret != "SEC" {
			t.Fatalf("ticket = %+v, %v", got, err)
		}
		if _, err := s.OnboardingTicketByHash(ctx, "th", t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired ticket: %v", err)
		}
		if err := s.PurgeRegistration(ctx, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetKIMChallenge(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("purge left the challenge: %v", err)
		}
	})
}

func TestOrgServicesAndBlocks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		svc := store.OrgService{Domain: "a.example.de", TelematikID: "1-x", IsInsurance: true, Status: store.ServicePending, OrderedAt: t0}
		if err := s.CreateOrgService(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOrgService(ctx, store.OrgService{Domain: "a.example.de", TelematikID: "1-y", Status: store.ServicePending, OrderedAt: t0}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("domain ordered twice: %v", err)
		}
		if err := s.SetOrgServiceStatus(ctx, "a.example.de", store.ServicePending, store.ServiceActive, "ok", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetOrgServiceStatus(ctx, "a.example.de", store.ServicePending, store.ServiceRejected, "", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("decided twice: %v", err)
		}
		list, _ := s.OrgServices(ctx, "1-x")
		if len(list) != 1 || list[0].Status != store.ServiceActive || !list[0].IsInsurance || !list[0].DecidedAt.Equal(t0) {
			t.Fatalf("services = %+v", list)
		}
		if other, _ := s.OrgServices(ctx, "1-y"); len(other) != 0 {
			t.Fatalf("another organisation sees %+v", other)
		}
		if err := s.DeleteOrgService(ctx, "1-y", "a.example.de"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted by another organisation: %v", err)
		}
		if err := s.DeleteOrgService(ctx, "1-x", "a.example.de"); err != nil {
			t.Fatal(err)
		}

		s.PutBlockedUser(ctx, store.BlockedUser{MXID: "@u:a.example.de", TelematikID: "1-x", BlockedAt: t0})
		s.PutBlockedUser(ctx, store.BlockedUser{MXID: "@u:a.example.de", TelematikID: "1-x", BlockedAt: t0.Add(time.Hour)})
		if b, _ := s.BlockedUsers(ctx, "1-x"); len(b) != 1 || !b[0].BlockedAt.Equal(t0) {
			t.Fatalf("blocked = %+v", b)
		}
		if err := s.DeleteBlockedUser(ctx, "1-y", "@u:a.example.de"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unblocked by another organisation: %v", err)
		}
		if err := s.DeleteBlockedUser(ctx, "1-x", "@u:a.example.de"); err != nil {
			t.Fatal(err)
		}
	})
}
