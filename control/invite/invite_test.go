package invite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/timfd/fachdienst/control/invite"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/store/storetest"
	"github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/policies"
)

var now = time.Unix(1_800_000_000, 0).UTC()

type fakeVZD struct {
	entries map[string]vzd.Result
	calls   atomic.Int64
	down    atomic.Bool
}

func (f *fakeVZD) Localize(_ context.Context, mxid string) (vzd.Result, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return "", errors.New("vzd: connection refused")
	}
	if r, ok := f.entries[mxid]; ok {
		return r, nil
	}
	return vzd.None, nil
}

type fakePermissions map[string]map[string]any

func (f fakePermissions) PermissionConfig(_ context.Context, mxid, _ string) (map[string]any, error) {
	return f[mxid], nil
}

func data(t testing.TB, variant string) []byte {
	t.Helper()
	raw, err := fs.ReadFile(policies.FS, "data.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["config"].(map[string]any)["variant"] = variant
	out, _ := json.Marshal(doc)
	return out
}

type env struct {
	d   *invite.Decider
	st  *store.Store
	vzd *fakeVZD
}

func setup(t testing.TB, variant string, perms invite.PermissionSource, cacheTTL time.Duration, clock *time.Time) *env {
	t.Helper()
	st := storetest.SQLite(t)
	f := &fakeVZD{entries: map[string]vzd.Result{
		"@org:a.de":       vzd.Org,
		"@pract:a.de":     vzd.Pract,
		"@both:b.de":      vzd.OrgPract,
		"@pract2:b.de":    vzd.Pract,
		"@orgonly:b.de":   vzd.Org,
		"@unlisted:b.de":  vzd.None,
		"@practonly:c.de": vzd.Pract,
	}}
	d, err := invite.New(context.Background(), invite.Options{
		Releases: st, Localizer: f, Permissions: perms,
		CacheSize: 100, CacheTTL: cacheTTL,
		Now: func() time.Time { return *clock },
	}, policies.FS, data(t, variant))
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, st: st, vzd: f}
}

func TestDecide(t *testing.T) {
	clock := now
	e := setup(t, "basis", nil, time.Minute, &clock)
	ctx := context.Background()
	for _, c := range []store.Contact{
		{Owner: "@unlisted:b.de", Contact: "@friend:x.de", Start: now.Add(-time.Hour)},
		{Owner: "@unlisted:b.de", Contact: "@former:x.de", Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour)},
		{Owner: "@unlisted:b.de", Contact: "@later:x.de", Start: now.Add(time.Hour)},
	} {
		if err := e.st.CreateContact(ctx, c, 100); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name             string
		inviter, invitee string
		want             invite.Decision
		wantVZDCalls     int64
	}{
		{"stage 2: release list hit", "@friend:x.de", "@unlisted:b.de", invite.Decision{Allow: true, Stage: 2, Reason: "release list"}, 0},
		{"stage 2 expired entry falls through to stage 3", "@former:x.de", "@unlisted:b.de", invite.Decision{Allow: false, Stage: 3, Reason: "not found in directory"}, 2},
		{"stage 2 future entry falls through", "@later:x.de", "@unlisted:b.de", invite.Decision{Allow: false, Stage: 3, Reason: "not found in directory"}, 2},
		{"release list is the invitee's, not the inviter's", "@unlisted:b.de", "@friend:x.de", invite.Decision{Allow: false, Stage: 3, Reason: "not found in directory"}, 2},
		{"stage 3: invitee in organisation directory", "@unlisted:b.de", "@org:a.de", invite.Decision{Allow: true, Stage: 3, Reason: "invitee in organisation directory"}, 2},
		{"stage 3: invitee orgPract", "@nobody:z.de", "@both:b.de", invite.Decision{Allow: true, Stage: 3, Reason: "invitee in organisation directory"}, 2},
		{"stage 3: both in person directory", "@pract:a.de", "@pract2:b.de", invite.Decision{Allow: true, Stage: 3, Reason: "both in person directory"}, 2},
		{"stage 3: inviter only in org, invitee pract", "@orgonly:b.de", "@practonly:c.de", invite.Decision{Allow: false, Stage: 3, Reason: "not found in directory"}, 2},
		{"stage 3: inviter unlisted, invitee pract", "@unlisted:b.de", "@practonly:c.de", invite.Decision{Allow: false, Stage: 3, Reason: "not found in directory"}, 1}, // both cached by now
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.vzd.calls.Load()
			got, err := e.d.Decide(ctx, tc.inviter, tc.invitee)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if calls := e.vzd.calls.Load() - before; calls > tc.wantVZDCalls {
				t.Fatalf("%d VZD calls, want at most %d", calls, tc.wantVZDCalls)
			}
		})
	}
}

func TestVZDDownDenies(t *testing.T) {
	clock := now
	e := setup(t, "basis", nil, time.Minute, &clock)
	e.vzd.down.Store(true)
	got, err := e.d.Decide(context.Background(), "@pract:a.de", "@org:a.de")
	if err != nil {
		t.Fatal(err)
	}
	if got.Allow || got.Stage != 3 || got.Reason == "" {
		t.Fatalf("VZD down: %+v, want a stage-3 deny with reason", got)
	}
	// Failures are not cached: once the VZD is back, the same invite passes.
	e.vzd.down.Store(false)
	if got, _ := e.d.Decide(context.Background(), "@pract:a.de", "@org:a.de"); !got.Allow {
		t.Fatalf("VZD back: %+v", got)
	}
}

func TestLocalizationCache(t *testing.T) {
	clock := now
	e := setup(t, "basis", nil, time.Minute, &clock)
	ctx := context.Background()
	for range 5 {
		if got, _ := e.d.Decide(ctx, "@pract:a.de", "@org:a.de"); !got.Allow {
			t.Fatalf("%+v", got)
		}
	}
	if n := e.vzd.calls.Load(); n != 2 {
		t.Fatalf("%d VZD calls for five identical decisions, want 2", n)
	}
	// With a warm cache the VZD may be down: answers still come from the cache ...
	e.vzd.down.Store(true)
	if got, _ := e.d.Decide(ctx, "@pract:a.de", "@org:a.de"); !got.Allow {
		t.Fatalf("warm cache: %+v", got)
	}
	// ... until the TTL runs out.
	clock = clock.Add(time.Minute)
	if got, _ := e.d.Decide(ctx, "@pract:a.de", "@org:a.de"); got.Allow {
		t.Fatalf("expired cache with VZD down: %+v", got)
	}
}

func TestInvalidInput(t *testing.T) {
	clock := now
	e := setup(t, "basis", nil, time.Minute, &clock)
	for _, pair := range [][2]string{{"alice", "@b:b.de"}, {"@a:a.de", ""}, {"@a:", "@b:b.de"}} {
		got, err := e.d.Decide(context.Background(), pair[0], pair[1])
		if !errors.Is(err, invite.ErrInvalidInput) || got.Allow {
			t.Fatalf("%v: %+v, %v", pair, got, err)
		}
	}
}

func TestProPermissionConfig(t *testing.T) {
	clock := now
	perms := fakePermissions{
		"@blocked:b.de": {"defaultSetting": "block all"},
		"@open:b.de":    {"defaultSetting": "allow all"},
		"@picky:b.de":   {"defaultSetting": "block all", "userExceptions": map[string]any{"@pract:a.de": map[string]any{}}},
	}
	e := setup(t, "pro", perms, time.Minute, &clock)
	ctx := context.Background()
	cases := []struct {
		inviter, invitee string
		allow            bool
		stage            int
	}{
		{"@pract:a.de", "@blocked:b.de", false, 2},
		{"@pract:a.de", "@open:b.de", true, 2},
		{"@pract:a.de", "@picky:b.de", true, 2},
		{"@org:a.de", "@picky:b.de", false, 2},
		{"@pract:a.de", "@pract2:b.de", true, 3}, // no configuration: VZD decides
	}
	for _, tc := range cases {
		got, err := e.d.Decide(ctx, tc.inviter, tc.invitee)
		if err != nil || got.Allow != tc.allow || got.Stage != tc.stage {
			t.Errorf("%s -> %s: %+v, %v; want allow=%v stage=%d", tc.inviter, tc.invitee, got, err, tc.allow, tc.stage)
		}
	}
}

func TestSetPolicyKeepsPreviousOnError(t *testing.T) {
	clock := now
	e := setup(t, "basis", nil, time.Minute, &clock)
	broken := fstest.MapFS{"invite.rego": {Data: []byte("package tim.invite\ndecision := {")}}
	if err := e.d.SetPolicy(context.Background(), broken, nil); err == nil {
		t.Fatal("broken policy accepted")
	}
	if err := e.d.SetPolicy(context.Background(), fstest.MapFS{}, nil); err == nil {
		t.Fatal("empty policy accepted")
	}
	if got, _ := e.d.Decide(context.Background(), "@pract:a.de", "@org:a.de"); !got.Allow {
		t.Fatalf("previous policy not kept: %+v", got)
	}
	// A policy that answers outside the contract denies.
	odd := fstest.MapFS{"invite.rego": {Data: []byte("package tim.invite\ndecision := {\"allow\": true, \"stage\": 9}")}}
	if err := e.d.SetPolicy(context.Background(), odd, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.d.Decide(context.Background(), "@pract:a.de", "@org:a.de"); got.Allow {
		t.Fatalf("malformed decision allowed: %+v", got)
	}
}

func TestHomeserverPermissions(t *testing.T) {
	// One homeserver that answers both APIs the way Synapse does, unless asked on a path it lacks:
	// then it answers as Dendrite does for an unknown endpoint (404 M_UNRECOGNIZED).
	const typ = "de.gematik.tim.account.permissionconfig.pro.v1"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		notFound := func(code string) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"errcode":%q,"error":"..."}`, code)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/_synapse/admin/") && auth != "Bearer admin",
			strings.HasPrefix(r.URL.Path, "/_matrix/client/") && auth != "Bearer as-token":
			w.WriteHeader(http.StatusForbidden)
		case r.URL.Path == "/_synapse/admin/v1/users/@a:b.de/accountdata":
			fmt.Fprint(w, `{"account_data":{"global":{"`+typ+`":{"defaultSetting":"block all"}},"rooms":{}}}`)
		case r.URL.Path == "/_synapse/admin/v1/users/@none:b.de/accountdata":
			fmt.Fprint(w, `{"account_data":{"global":{}}}`)
		case r.URL.Path == "/_synapse/admin/v1/users/@unknown:b.de/accountdata":
			notFound("M_NOT_FOUND")
		case r.URL.Path == "/_matrix/client/v3/user/@a:b.de/account_data/"+typ && r.URL.Query().Get("user_id") == "@a:b.de":
			fmt.Fprint(w, `{"defaultSetting":"block all"}`)
		case r.URL.Path == "/_matrix/client/v3/user/@none:b.de/account_data/"+typ && r.URL.Query().Get("user_id") == "@none:b.de":
			notFound("M_NOT_FOUND")
		case r.URL.Path == "/_matrix/client/v3/user/@odd:b.de/account_data/"+typ:
			fmt.Fprint(w, `["not","an","object"]`)
		case r.URL.Path == "/_matrix/client/v3/user/@html:b.de/account_data/"+typ:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<html>not found</html>`)
		default:
			notFound("M_UNRECOGNIZED")
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	synapse := invite.NewHomeserverPermissions(srv.URL, "admin", time.Second)
	appservice, err := invite.NewAccountDataPermissions(invite.APIAppservice, srv.URL, "as-token", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	badToken := invite.NewHomeserverPermissions(srv.URL, "wrong", time.Second)
	cases := []struct {
		name          string
		p             *invite.HomeserverPermissions
		mxid, variant string
		want          string
		wantErr       error // nil: none; errAny: some error
	}{
		{"admin: configuration", synapse, "@a:b.de", "pro", `{"defaultSetting":"block all"}`, nil},
		{"admin: other variant", synapse, "@a:b.de", "epa", `null`, nil},
		{"admin: variant without configuration", synapse, "@a:b.de", "basis", `null`, nil},
		{"admin: no account data", synapse, "@none:b.de", "pro", `null`, nil},
		{"admin: unknown user", synapse, "@unknown:b.de", "pro", `null`, nil},
		{"admin: endpoint missing (Dendrite)", synapse, "@x:b.de", "pro", `null`, invite.ErrNoEndpoint},
		{"admin: refused", badToken, "@a:b.de", "pro", `null`, errAny},
		{"appservice: configuration", appservice, "@a:b.de", "pro", `{"defaultSetting":"block all"}`, nil},
		{"appservice: no account data", appservice, "@none:b.de", "pro", `null`, nil},
		{"appservice: not an object", appservice, "@odd:b.de", "pro", `{"defaultSetting":"unreadable"}`, nil},
		{"appservice: 404 that is not Matrix", appservice, "@html:b.de", "pro", `null`, invite.ErrNoEndpoint},
		{"appservice: variant without configuration", appservice, "@a:b.de", "basis", `null`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.PermissionConfig(ctx, tc.mxid, tc.variant)
			raw, _ := json.Marshal(got)
			switch {
			case tc.wantErr == nil && err != nil, tc.wantErr != nil && err == nil,
				tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if string(raw) != tc.want {
				t.Fatalf("got %s, want %s", raw, tc.want)
			}
		})
	}
	if _, err := invite.NewAccountDataPermissions("admin-v2", srv.URL, "x", time.Second); err == nil {
		t.Fatal("an unknown API must be refused")
	}
}

// errAny stands for "some error" in table tests.
var errAny = errors.New("any error")

type insurance map[string]bool

func (i insurance) IsInsurance(domain string) bool { return i[domain] }

func TestInsuranceFlagsReachThePolicy(t *testing.T) {
	clock := now
	st := storetest.SQLite(t)
	ctx := context.Background()
	if err := st.CreateContact(ctx, store.Contact{Owner: "@insured:kasse-b.de", Contact: "@insured:kasse-a.de", Start: now.Add(-time.Hour)}, 10); err != nil {
		t.Fatal(err)
	}
	d, err := invite.New(ctx, invite.Options{
		Releases: st, Localizer: &fakeVZD{}, Insurance: insurance{"kasse-a.de": true, "kasse-b.de": true},
		Now: func() time.Time { return clock },
	}, policies.FS, data(t, "epa"))
	if err != nil {
		t.Fatal(err)
	}
	// TI-M ePA: no invites between two insured persons, even with a release entry.
	got, err := d.Decide(ctx, "@insured:KASSE-A.de", "@insured:kasse-b.de")
	if err != nil || got.Allow || got.Stage != 2 {
		t.Fatalf("two insured persons: %+v, %v", got, err)
	}
	// A server name with a port is its domain: the ePA rule holds for it too.
	got, err = d.Decide(ctx, "@insured:kasse-a.de:8448", "@insured:Kasse-B.de:443")
	if err != nil || got.Allow || got.Stage != 2 {
		t.Fatalf("two insured persons, server names with ports: %+v, %v", got, err)
	}
}
