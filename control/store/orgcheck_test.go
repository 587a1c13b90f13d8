package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/store/storetest"
)

func TestOrgChecks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tid := range []string{"1-a", "1-b"} {
			if err := s.CreateOrgAdmin(ctx, store.OrgAdmin{ID: tid, TelematikID: tid, Username: "u" + tid, CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		for _, x := range []store.OrgService{
			{Domain: "b.example.de", TelematikID: "1-a", Status: store.ServiceActive, OrderedAt: t0},
			{Domain: "a.example.de", TelematikID: "1-a", Status: store.ServiceActive, OrderedAt: t0},
			{Domain: "pending.example.de", TelematikID: "1-a", Status: store.ServicePending, OrderedAt: t0},
			{Domain: "c.example.de", TelematikID: "1-b", Status: store.ServiceRejected, OrderedAt: t0},
		} {
			if err := s.CreateOrgService(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.OrgChecks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].TelematikID != "1-a" || !slices.Equal(list[0].Domains, []string{"a.example.de", "b.example.de"}) ||
			list[1].TelematikID != "1-b" || len(list[1].Domains) != 0 || list[0].Suspended != "" || !list[0].InactiveSince.IsZero() {
			t.Fatalf("org checks = %+v", list)
		}
		since := t0.Add(time.Hour)
		st := store.OrgCheck{TelematikID: "1-a", InactiveSince: since, Notified: true}
		if err := s.SetOrgCheck(ctx, st); err != nil {
			t.Fatal(err)
		}
		st.Suspended, st.SuspendedAt = "inactive", since.Add(time.Hour)
		if err := s.SetOrgCheck(ctx, st); err != nil { // second write replaces
			t.Fatal(err)
		}
		got, err := s.OrgCheckByTelematikID(ctx, "1-a")
		if err != nil || !got.InactiveSince.Equal(since) || !got.Notified || got.Suspended != "inactive" || !got.SuspendedAt.Equal(since.Add(time.Hour)) {
			t.Fatalf("org check = %+v, %v", got, err)
		}
		if _, err := s.OrgCheckByTelematikID(ctx, "1-zz"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown organisation: %v", err)
		}
		if err := s.SetOrgCheck(ctx, store.OrgCheck{TelematikID: "1-a"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.OrgCheckByTelematikID(ctx, "1-a"); got.Notified || got.Suspended != "" || !got.InactiveSince.IsZero() {
			t.Fatalf("cleared org check = %+v", got)
		}
	})
}

func TestUserBlockedSet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateOrgService(ctx, store.OrgService{Domain: "a.example.de", TelematikID: "1-a", Status: store.ServiceActive, OrderedAt: t0}); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"@z:a.example.de", "@y:other.example", "@z:a.example.de"} {
			if err := s.SetUserBlocked(ctx, m, true, t0); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.AllBlockedUsers(ctx)
		if err != nil || !slices.Equal(all, []string{"@y:other.example", "@z:a.example.de"}) {
			t.Fatalf("blocked = %v, %v", all, err)
		}
		// Filed under the organisation whose service the server name is: its Org-Admin lists it.
		own, err := s.BlockedUsers(ctx, "1-a")
		if err != nil || len(own) != 1 || own[0].MXID != "@z:a.example.de" {
			t.Fatalf("organisation's blocked = %+v, %v", own, err)
		}
		if err := s.SetUserBlocked(ctx, "@z:a.example.de", false, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserBlocked(ctx, "@never:a.example.de", false, t0); err != nil {
			t.Fatal(err)
		}
		if all, _ := s.AllBlockedUsers(ctx); !slices.Equal(all, []string{"@y:other.example"}) {
			t.Fatalf("after unblock = %v", all)
		}
	})
}
