package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/store/storetest"
)

var t0 = time.Unix(1_700_000_000, 0).UTC()

func TestContactsCRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice := "@alice:a.de"
		c := store.Contact{Owner: alice, Contact: "@bob:b.de", DisplayName: "Bob", Start: t0, End: t0.Add(time.Hour)}
		if err := s.CreateContact(ctx, c, 10); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateContact(ctx, c, 10); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		open := store.Contact{Owner: alice, Contact: "@carol:c.de", DisplayName: "Carol", Start: t0}
		if err := s.CreateContact(ctx, open, 10); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetContact(ctx, alice, "@bob:b.de")
		if err != nil || got != c {
			t.Fatalf("get = %+v, %v; want %+v", got, err, c)
		}
		list, err := s.ListContacts(ctx, alice, 100)
		if err != nil || len(list) != 2 || list[0] != c || list[1] != open {
			t.Fatalf("list = %+v, %v", list, err)
		}
		// Another owner sees nothing of alice's list.
		if list, _ := s.ListContacts(ctx, "@mallory:m.de", 100); len(list) != 0 {
			t.Fatalf("foreign owner sees %+v", list)
		}
		if _, err := s.GetContact(ctx, "@mallory:m.de", "@bob:b.de"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("foreign get: %v", err)
		}
		c.DisplayName, c.End = "Bob B.", time.Time{}
		if err := s.UpdateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetContact(ctx, alice, "@bob:b.de"); got != c {
			t.Fatalf("after update = %+v, want %+v", got, c)
		}
		if err := s.UpdateContact(ctx, store.Contact{Owner: alice, Contact: "@nobody:x.de", Start: t0}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if err := s.DeleteContact(ctx, "@mallory:m.de", "@bob:b.de"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("foreign delete: %v", err)
		}
		if err := s.DeleteContact(ctx, alice, "@bob:b.de"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetContact(ctx, alice, "@bob:b.de"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func TestContactLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i := range 3 {
			err := s.CreateContact(ctx, store.Contact{Owner: "@o:x.de", Contact: fmt.Sprintf("@c%d:x.de", i), Start: t0}, 2)
			if want := i >= 2; want != errors.Is(err, store.ErrLimit) {
				t.Fatalf("create %d: %v", i, err)
			}
		}
	})
}

func TestConcurrentCreateOneWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				results <- s.CreateContact(ctx, store.Contact{Owner: "@o:x.de", Contact: "@c:x.de", Start: t0}, 100)
			})
		}
		wg.Wait()
		close(results)
		ok := 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrExists):
			default:
				// Serialisation conflicts surface as errors, never as a second row.
				t.Logf("concurrent create: %v", err)
			}
		}
		list, _ := s.ListContacts(ctx, "@o:x.de", 100)
		if ok != 1 || len(list) != 1 {
			t.Fatalf("%d creates succeeded, %d rows stored; want 1 and 1", ok, len(list))
		}
	})
}

func TestReleaseWindowAndPurge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner := "@owner:x.de"
		for _, c := range []store.Contact{
			{Owner: owner, Contact: "@open:y.de", Start: t0},
			{Owner: owner, Contact: "@window:y.de", Start: t0, End: t0.Add(time.Hour)},
			{Owner: owner, Contact: "@expired:y.de", Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour)},
			{Owner: owner, Contact: "@future:y.de", Start: t0.Add(time.Hour)},
		} {
			if err := s.CreateContact(ctx, c, 100); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			contact string
			at      time.Time
			want    bool
		}{
			{"@open:y.de", t0, true},
			{"@open:y.de", t0.Add(-time.Second), false},
			{"@window:y.de", t0.Add(30 * time.Minute), true},
			{"@window:y.de", t0.Add(time.Hour), false}, // end is exclusive
			{"@expired:y.de", t0, false},               // ignored before the purge
			{"@future:y.de", t0, false},
			{"@future:y.de", t0.Add(time.Hour), true},
			{"@stranger:y.de", t0, false},
		}
		for _, tc := range cases {
			got, err := s.IsReleased(ctx, owner, tc.contact, tc.at)
			if err != nil || got != tc.want {
				t.Errorf("IsReleased(%s, %v) = %v, %v; want %v", tc.contact, tc.at, got, err, tc.want)
			}
		}
		// Released only in the owner's list, not the other way round.
		if got, _ := s.IsReleased(ctx, "@open:y.de", owner, t0); got {
			t.Error("release list must not be symmetric")
		}
		n, err := s.PurgeExpired(ctx, t0)
		if err != nil || n != 1 {
			t.Fatalf("purge = %d, %v; want 1", n, err)
		}
		if _, err := s.GetContact(ctx, owner, "@expired:y.de"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired entry survived purge: %v", err)
		}
		if list, _ := s.ListContacts(ctx, owner, 100); len(list) != 3 {
			t.Fatalf("purge removed too much: %+v", list)
		}
	})
}

func TestFederationList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.LoadFederationList(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("empty load: %v", err)
		}
		l := store.FederationList{JWS: "a.b.c", Version: 7, FetchedAt: t0}
		if err := s.SaveFederationList(ctx, l); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LoadFederationList(ctx); err != nil || got != l {
			t.Fatalf("load = %+v, %v", got, err)
		}
		l.FetchedAt = t0.Add(time.Hour) // same version: refresh of fetched_at
		if err := s.SaveFederationList(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveFederationList(ctx, store.FederationList{JWS: "old", Version: 6, FetchedAt: t0}); err == nil {
			t.Fatal("older version accepted")
		}
		if err := s.SaveFederationList(ctx, store.FederationList{Version: 9}); err == nil {
			t.Fatal("empty JWS accepted")
		}
		if got, _ := s.LoadFederationList(ctx); got != l {
			t.Fatalf("load = %+v, want %+v", got, l)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := t.TempDir() + "/tim.db"
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateContact(ctx, store.Contact{Owner: "@o:x.de", Contact: "@c:x.de", Start: t0}, 10); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = store.Open(ctx, store.Options{SQLitePath: path}) // migrations are idempotent
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetContact(ctx, "@o:x.de", "@c:x.de"); err != nil {
		t.Fatal(err)
	}
}
