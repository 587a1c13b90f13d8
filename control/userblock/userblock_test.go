package userblock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/timfd/fachdienst/control/userblock"
)

// user is a Matrix user as a client sees the homeserver: login and whoami.
type user struct {
	t              *testing.T
	base, mxid, pw string
}

func (u user) post(path, token string, body any) (int, map[string]any) {
	u.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, u.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(u.t, req)
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// login returns an access token, or "" and the status when the homeserver refuses.
func (u user) login() (string, int) {
	u.t.Helper()
	local := strings.TrimPrefix(strings.SplitN(u.mxid, ":", 2)[0], "@")
	status, out := u.post("/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": local}, "password": u.pw})
	if status != 200 {
		return "", status
	}
	tok, _ := out["access_token"].(string)
	return tok, status
}

// whoami returns the status and errcode the homeserver answers for token.
func (u user) whoami(token string) (int, string) {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u.base+"/_matrix/client/v3/account/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	status, out := send(u.t, req)
	code, _ := out["errcode"].(string)
	return status, code
}

// homeserverUnderTest is a homeserver with an admin token and a user that can log in.
type homeserverUnderTest struct {
	kind       string
	base       string
	adminToken string
	server     string // server name
	user       user
	fail       func(status int) // makes admin calls fail; nil when not possible
}

func fakeHS(t *testing.T, kind string) homeserverUnderTest {
	h := newFakeHomeserver(kind)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	h.users["@alice:hs.example.de"] = &fakeUser{password: "alice-password-1", devices: map[string]string{}}
	hs := homeserverUnderTest{kind: kind, base: srv.URL, adminToken: h.adminToken, server: "hs.example.de"}
	hs.user = user{t: t, base: srv.URL, mxid: "@alice:hs.example.de", pw: "alice-password-1"}
	hs.fail = func(status int) { h.mu.Lock(); h.fail = status; h.mu.Unlock() }
	return hs
}

func newBlocker(t *testing.T, hs homeserverUnderTest, changes *atomic.Int32) *userblock.Blocker {
	t.Helper()
	var admin userblock.Homeserver
	var err error
	if hs.kind == "synapse" {
		admin, err = userblock.NewSynapse(hs.base, hs.adminToken, nil)
	} else {
		admin, err = userblock.NewDendrite(hs.base, hs.adminToken, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := userblock.New(context.Background(), userblock.Options{Homeserver: admin, Store: userblock.NewMemStore(),
		ServerNames: []string{hs.server}, OnChange: func(context.Context) { changes.Add(1) }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blockScenario is A_23613 as the user experiences it, run against each homeserver.
func blockScenario(t *testing.T, hs homeserverUnderTest) {
	ctx := context.Background()
	var changes atomic.Int32
	b := newBlocker(t, hs, &changes)
	u := hs.user

	t1, st := u.login()
	t2, _ := u.login()
	if t1 == "" || t2 == "" {
		t.Fatalf("login: %d", st)
	}
	if st, _ := u.whoami(t1); st != 200 {
		t.Fatalf("whoami before blocking: %d", st)
	}

	// Block: both sessions end at once; the proxies get the user.
	if err := b.Block(ctx, u.mxid); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{t1, t2} {
		if st, code := u.whoami(tok); st != 401 {
			t.Fatalf("whoami of a blocked user: %d %s", st, code)
		}
	}
	if !b.IsBlocked(u.mxid) || changes.Load() != 1 {
		t.Fatalf("blocked set: %v, changes %d", b.Users(), changes.Load())
	}
	data, err := b.MergeData([]byte(`{"config":{"variant":"pro"}}`))
	if err != nil || !strings.Contains(string(data), `"blocked_users":{"`+u.mxid+`":true}`) || !strings.Contains(string(data), `"variant":"pro"`) {
		t.Fatalf("policy data: %s %v", data, err)
	}
	// A new login gives no usable session while blocked.
	if tok, _ := u.login(); tok != "" {
		if st, _ := u.whoami(tok); st != 401 {
			t.Fatalf("blocked user got a working session: %d", st)
		}
	}

	// Unblock: the proxies forward again.
	if err := b.Unblock(ctx, u.mxid); err != nil {
		t.Fatal(err)
	}
	if b.IsBlocked(u.mxid) || changes.Load() != 2 {
		t.Fatalf("after unblock: %v, changes %d", b.Users(), changes.Load())
	}
	if data, _ := b.MergeData([]byte(`{}`)); string(data) != `{"config":{"blocked_users":{}}}` {
		t.Fatalf("policy data after unblock: %s", data)
	}
	tok, st := u.login()
	switch hs.kind {
	case "synapse":
		if st, _ := u.whoami(tok); tok == "" || st != 200 {
			t.Fatalf("synapse: unblocked user cannot work: login %q whoami %d", tok, st)
		}
	case "dendrite":
		// Dendrite's admin API ended the sessions by replacing the password: the old one is gone until
		// the Org-Admin sets a new one.
		if tok != "" || st != 403 {
			t.Fatalf("dendrite: old password still works after blocking: %d", st)
		}
		u.pw = "alice-new-password-2"
		if err := b.SetPassword(ctx, u.mxid, u.pw); err != nil {
			t.Fatal(err)
		}
		if tok, st = u.login(); tok == "" {
			t.Fatalf("dendrite: login with the new password: %d", st)
		}
		if st, _ := u.whoami(tok); st != 200 {
			t.Fatalf("dendrite: unblocked user with a new password cannot work: %d", st)
		}
	}
	// Setting a password keeps the session.
	if err := b.SetPassword(ctx, u.mxid, "alice-newer-password-3"); err != nil {
		t.Fatal(err)
	}
	if st, _ := u.whoami(tok); st != 200 {
		t.Fatalf("setting the password ended the session: %d", st)
	}
}

func endSessionsScenario(t *testing.T, hs homeserverUnderTest) {
	ctx := context.Background()
	var changes atomic.Int32
	b := newBlocker(t, hs, &changes)
	u := hs.user
	t1, _ := u.login()
	if err := b.EndSessions(ctx, u.mxid); err != nil {
		t.Fatal(err)
	}
	if st, code := u.whoami(t1); st != 401 || code != "M_UNKNOWN_TOKEN" {
		t.Fatalf("whoami after ending sessions: %d %s", st, code)
	}
	if b.IsBlocked(u.mxid) || changes.Load() != 0 {
		t.Fatal("ending sessions blocked the user")
	}
	_, st := u.login()
	if want := map[string]int{"synapse": 200, "dendrite": 403}[hs.kind]; st != want {
		t.Fatalf("%s: login after ending sessions: %d, want %d", hs.kind, st, want)
	}
}

func refusalsScenario(t *testing.T, hs homeserverUnderTest) {
	ctx := context.Background()
	var changes atomic.Int32
	b := newBlocker(t, hs, &changes)
	for _, tc := range []struct {
		mxid string
		want error
	}{
		{"@bob:other.example.de", userblock.ErrNotLocal},
		{"alice", userblock.ErrBadUser},
		{"@nobody:" + hs.server, userblock.ErrUnknownUser},
	} {
		if err := b.Block(ctx, tc.mxid); !errors.Is(err, tc.want) {
			t.Fatalf("Block(%s) = %v, want %v", tc.mxid, err, tc.want)
		}
		if b.IsBlocked(tc.mxid) {
			t.Fatalf("%s kept in the blocked set", tc.mxid)
		}
	}
	if err := b.EndSessions(ctx, "@bob:other.example.de"); !errors.Is(err, userblock.ErrNotLocal) {
		t.Fatalf("EndSessions of a foreign user: %v", err)
	}
	// The homeserver fails: the proxies still block.
	if hs.fail != nil {
		hs.fail(500)
		err := b.Block(ctx, hs.user.mxid)
		if err == nil || !b.IsBlocked(hs.user.mxid) {
			t.Fatalf("homeserver failure: err %v, blocked %v", err, b.IsBlocked(hs.user.mxid))
		}
		if err := b.Unblock(ctx, hs.user.mxid); err == nil && hs.kind == "synapse" {
			t.Fatal("unblock reported success though the homeserver failed")
		}
		hs.fail(0)
	}
}

// Against recorded contracts of Synapse's and Dendrite v0.13.8's admin API.
func TestAgainstRecordedContracts(t *testing.T) {
	for _, kind := range []string{"synapse", "dendrite"} {
		t.Run(kind+"/block", func(t *testing.T) { blockScenario(t, fakeHS(t, kind)) })
		t.Run(kind+"/end sessions", func(t *testing.T) { endSessionsScenario(t, fakeHS(t, kind)) })
		t.Run(kind+"/refusals", func(t *testing.T) { refusalsScenario(t, fakeHS(t, kind)) })
	}
}

func TestSynapseDoesNotCreateUnknownUsers(t *testing.T) {
	h := newFakeHomeserver("synapse")
	srv := httptest.NewServer(h)
	defer srv.Close()
	s, err := userblock.NewSynapse(srv.URL, h.adminToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(context.Background(), "@ghost:hs.example.de"); !errors.Is(err, userblock.ErrUnknownUser) {
		t.Fatalf("Lock(unknown) = %v", err)
	}
	if _, created := h.users["@ghost:hs.example.de"]; created {
		t.Fatal("locking an unknown user created it")
	}
	for _, c := range h.calls {
		if strings.HasPrefix(c, "PUT") {
			t.Fatalf("PUT sent for an unknown user: %v", h.calls)
		}
	}
}

func TestStoreIsLoaded(t *testing.T) {
	var changes atomic.Int32
	hs := fakeHS(t, "synapse")
	admin, _ := userblock.NewSynapse(hs.base, hs.adminToken, nil)
	b, err := userblock.New(context.Background(), userblock.Options{Homeserver: admin, Store: userblock.NewMemStore("@x:hs.example.de"),
		ServerNames: []string{"hs.example.de"}, OnChange: func(context.Context) { changes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if !b.IsBlocked("@x:hs.example.de") {
		t.Fatal("stored block not loaded")
	}
	if _, err := b.MergeData([]byte(`{"config":[]}`)); err == nil {
		t.Fatal("config that is not an object accepted")
	}
}

// Another replica's block reaches this one through the shared store: Sync takes it in and calls
// OnChange once per change, not when nothing changed.
func TestSyncTakesInAnotherReplicasBlocks(t *testing.T) {
	var changes atomic.Int32
	hs := fakeHS(t, "synapse")
	admin, _ := userblock.NewSynapse(hs.base, hs.adminToken, nil)
	shared := userblock.NewMemStore("@x:hs.example.de")
	b, err := userblock.New(context.Background(), userblock.Options{Homeserver: admin, Store: shared,
		ServerNames: []string{"hs.example.de"}, OnChange: func(context.Context) { changes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if changed, err := b.Sync(ctx); changed || err != nil || changes.Load() != 0 {
		t.Fatalf("sync without change: %v %v, %d changes", changed, err, changes.Load())
	}
	// The other replica blocks y and unblocks x.
	shared.SetBlocked(ctx, "@y:hs.example.de", true)
	shared.SetBlocked(ctx, "@x:hs.example.de", false)
	if changed, err := b.Sync(ctx); !changed || err != nil || changes.Load() != 1 {
		t.Fatalf("sync after change: %v %v, %d changes", changed, err, changes.Load())
	}
	if !b.IsBlocked("@y:hs.example.de") || b.IsBlocked("@x:hs.example.de") {
		t.Fatalf("set after sync: %v", b.Users())
	}
	if changed, _ := b.Sync(ctx); changed || changes.Load() != 1 {
		t.Fatal("a second sync without change reported one")
	}
}
