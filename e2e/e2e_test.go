package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	controlvzd "github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/internal/localstack"
)

// stack is shared by the tests that leave it as they found it (they use distinct domains/users).
var stack *localstack.Stack

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tim-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stack, err = startStack(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := stack.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: shutdown:", err)
		code = 1
	}
	cancel()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startStack(dir string) (*localstack.Stack, error) {
	return localstack.Start(context.Background(), localstack.Options{
		DataDir: dir, NoPush: true, StandInHomeserver: true,
		// Every miss may refetch at once, so the tests do not depend on each other's timing.
		RefetchMinInterval: time.Millisecond,
	})
}

const (
	approvedUA   = "e2e/1.0," + localstack.ApprovedClientID
	federated    = "klinik.example.de"
	notFederated = localstack.UnfederatedDomain
)

type result struct {
	status int
	body   string
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer is not JSON: %q", r.body)
	}
	return m
}

func call(t *testing.T, method, u string, headers map[string]string, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b)}
}

// login signs a demo user in through the client-server proxy and returns the access token.
func login(t *testing.T, st *localstack.Stack, u localstack.User) string {
	t.Helper()
	local := strings.TrimPrefix(strings.SplitN(u.MXID, ":", 2)[0], "@")
	r := call(t, "POST", st.ClientURL+"/_matrix/client/v3/login", map[string]string{"User-Agent": approvedUA},
		fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":%q},"password":%q}`, local, u.Password))
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	tok, _ := r.json(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("login: no token in %s", r.body)
	}
	return tok
}

func createRoom(t *testing.T, st *localstack.Stack, token string, invite ...string) result {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"invite": invite})
	return call(t, "POST", st.ClientURL+"/_matrix/client/v3/createRoom",
		map[string]string{"User-Agent": approvedUA, "Authorization": "Bearer " + token}, string(b))
}

// seen counts the requests the homeserver stand-in received whose "METHOD path" starts with prefix.
func seen(st *localstack.Stack, prefix string) int {
	n := 0
	for _, s := range st.Homeserver.Seen() {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func wantJSON(t *testing.T, r result, status int, body map[string]any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := r.json(t); !reflect.DeepEqual(got, body) {
		t.Fatalf("body %v, want %v", got, body)
	}
}

const createRoomSeen = "POST /_matrix/client/v3/createRoom"

func TestCreateRoom(t *testing.T) {
	token := login(t, stack, stack.Users[0])
	cases := []struct {
		name    string
		invite  []string
		status  int
		body    map[string]any // exact answer for refusals
		reaches bool           // the homeserver sees the request
	}{
		{"federated invitee", []string{"@doc:" + federated}, 200, nil, true},
		{"own domain invitee", []string{stack.Users[1].MXID}, 200, nil, true},
		{"no invitee", nil, 200, nil, true},
		{"invitee outside the federation", []string{"@doc:" + notFederated}, 403,
			map[string]any{"errcode": "M_FORBIDDEN", "error": notFederated + " could not be invited"}, false},
		{"two invitees", []string{"@doc:" + federated, "@nurse:" + federated}, 400,
			map[string]any{"errcode": "M_FORBIDDEN", "error": "An error occurred when starting communication. Please contact your administrator."}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := seen(stack, createRoomSeen)
			r := createRoom(t, stack, token, c.invite...)
			if c.body != nil {
				wantJSON(t, r, c.status, c.body)
			} else if r.status != c.status || !strings.HasPrefix(r.json(t)["room_id"].(string), "!") {
				t.Fatalf("got %d %s, want %d with a room_id", r.status, r.body, c.status)
			}
			if got := seen(stack, createRoomSeen) - before; got != map[bool]int{true: 1, false: 0}[c.reaches] {
				t.Fatalf("homeserver saw %d createRoom requests, want reached=%v", got, c.reaches)
			}
			if r.status != 200 {
				if id := r.json(t); id["errcode"] == nil {
					t.Fatalf("refusal without errcode: %s", r.body)
				}
			}
		})
	}
}

// TestDomainAddedAtVZD: a domain registered at the VZD becomes invitable once the control plane
// holds the new list and the proxy refetches it on a miss (the proxy's own refresh is 10 s away).
func TestDomainAddedAtVZD(t *testing.T) {
	ctx := context.Background()
	const domain = "neu.example.de"
	token := login(t, stack, stack.Users[0])
	refused := map[string]any{"errcode": "M_FORBIDDEN", "error": domain + " could not be invited"}
	wantJSON(t, createRoom(t, stack, token, "@doc:"+domain), 403, refused)

	// POST /federation at the VZD stand-in, through the control plane's VZD client (OAuth2 + provider token).
	if _, err := stack.Control.VZD.AddDomain(ctx, controlvzd.Domain{Domain: domain, TelematikID: "1-2-neu"}); err != nil {
		t.Fatal(err)
	}
	// Still refused: the control plane has not polled yet, so the proxy's refetch brings the old list.
	wantJSON(t, createRoom(t, stack, token, "@doc:"+domain), 403, refused)
	// The control plane's poll (every 30 s in a local run; here at once).
	if err := stack.Control.Fed.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	updates, _ := stack.Proxies["client"].Runtime().Counter("tim_filter_fedlist_updates")
	before := seen(stack, createRoomSeen)
	if r := createRoom(t, stack, token, "@doc:"+domain); r.status != 200 {
		t.Fatalf("after the refetch: %d %s", r.status, r.body)
	}
	if seen(stack, createRoomSeen)-before != 1 {
		t.Fatal("the homeserver did not see the allowed createRoom")
	}
	if after, _ := stack.Proxies["client"].Runtime().Counter("tim_filter_fedlist_updates"); after <= updates {
		t.Fatalf("tim_filter_fedlist_updates %d -> %d: the proxy did not install a new list", updates, after)
	}
}

func xmatrix(origin string) string {
	return `X-Matrix origin="` + origin + `",destination="` + stack.ServerName + `",key="ed25519:1",sig="c2lnbmF0dXJl"`
}

func TestServerServer(t *testing.T) {
	path := "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape(stack.Users[0].MXID)
	cases := []struct {
		name    string
		auth    string
		status  int
		errcode string
		error   string
	}{
		{"federated origin", xmatrix(federated), 200, "", ""},
		{"origin outside the federation", xmatrix(notFederated), 403, "M_FORBIDDEN", "The other party could not be contacted"},
		{"no X-Matrix authorization", "", 401, "M_UNAUTHORIZED", ""},
		{"bearer instead of X-Matrix", "Bearer abc", 401, "M_UNAUTHORIZED", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := seen(stack, "GET /_matrix/federation/v1/query/profile")
			h := map[string]string{}
			if c.auth != "" {
				h["Authorization"] = c.auth
			}
			r := call(t, "GET", stack.FederationURL+path, h, "")
			if r.status != c.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, c.status)
			}
			reached := seen(stack, "GET /_matrix/federation/v1/query/profile") - before
			if c.status == 200 {
				if reached != 1 {
					t.Fatalf("homeserver saw %d requests, want 1", reached)
				}
				return
			}
			if reached != 0 {
				t.Fatal("a refused request reached the homeserver")
			}
			m := r.json(t)
			if m["errcode"] != c.errcode || (c.error != "" && m["error"] != c.error) {
				t.Fatalf("body %s, want errcode %s error %q", r.body, c.errcode, c.error)
			}
		})
	}
	// The VZD reaches the exempted endpoints although it is in no federation list (5.1.2.1.7).
	if r := call(t, "GET", stack.FederationURL+"/.well-known/matrix/server", nil, ""); r.status != 200 {
		t.Errorf("well-known: %d %s", r.status, r.body)
	}
}

// federationInvite sends a v2 server-server invite of invitee by inviter (whose server is origin).
func federationInvite(t *testing.T, st *localstack.Stack, inviter, invitee string, n int) result {
	t.Helper()
	origin := strings.SplitN(inviter, ":", 2)[1]
	event := map[string]any{"event": map[string]any{
		"type": "m.room.member", "sender": inviter, "state_key": invitee, "room_id": "!r" + fmt.Sprint(n) + ":" + origin,
		"origin": origin, "content": map[string]any{"membership": "invite"},
	}, "room_version": "10"}
	b, _ := json.Marshal(event)
	return call(t, "PUT", fmt.Sprintf("%s/_matrix/federation/v2/invite/%s/%s", st.FederationURL,
		url.PathEscape("!r"+fmt.Sprint(n)+":"+origin), url.PathEscape(fmt.Sprintf("$ev%d", n))),
		map[string]string{"Authorization": `X-Matrix origin="` + origin + `",destination="` + st.ServerName + `",key="ed25519:1",sig="c2ln"`}, string(b))
}

// addContact puts inviter on the release list of owner through the contact management API, with an
// OpenID token the homeserver (stand-in) issued to owner.
func addContact(t *testing.T, st *localstack.Stack, owner, inviter string) {
	t.Helper()
	tok := st.Homeserver.IssueOpenIDToken(owner)
	body := fmt.Sprintf(`{"displayName":"Dr. Example","mxid":%q,"inviteSettings":{"start":%d}}`, inviter, time.Now().Add(-time.Minute).Unix())
	r := call(t, "POST", st.ControlURL+"/tim-contact-mgmt/v1.0.2/contacts",
		map[string]string{"Authorization": "Bearer " + tok, "Mxid": owner, "Content-Type": "application/json"}, body)
	if r.status != 200 {
		t.Fatalf("contact management: %d %s", r.status, r.body)
	}
	// Another user's token cannot touch owner's list.
	other := st.Homeserver.IssueOpenIDToken(st.Users[0].MXID)
	if owner != st.Users[0].MXID {
		r = call(t, "GET", st.ControlURL+"/tim-contact-mgmt/v1.0.2/contacts", map[string]string{"Authorization": "Bearer " + other, "Mxid": owner}, "")
		if r.status != 403 {
			t.Fatalf("foreign token on the list: %d %s, want 403", r.status, r.body)
		}
	}
}

const fedInviteSeen = "PUT /_matrix/federation/v2/invite/"

// TestFederationInviteReleaseList: stage 2 through the real filter callout. Without a release-list
// entry (and no VZD directory entries, so stage 3 refuses) the invite is refused with 403; once the
// invitee has released the inviter through the contact management API, the same invite passes.
func TestFederationInviteReleaseList(t *testing.T) {
	bob := stack.Users[1].MXID
	inviter := "@doc:" + federated

	before := seen(stack, fedInviteSeen)
	r := federationInvite(t, stack, inviter, bob, 1)
	if r.status != 403 || r.json(t)["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("without release list: %d %s, want 403 M_FORBIDDEN", r.status, r.body)
	}
	if seen(stack, fedInviteSeen) != before {
		t.Fatal("the refused invite reached the homeserver")
	}

	addContact(t, stack, bob, inviter)
	r = federationInvite(t, stack, inviter, bob, 2)
	if r.status != 200 {
		t.Fatalf("with release list: %d %s, want 200", r.status, r.body)
	}
	if seen(stack, fedInviteSeen) != before+1 {
		t.Fatal("the allowed invite did not reach the homeserver")
	}
	// The release is per inviter: a colleague on the same server is still refused.
	if r := federationInvite(t, stack, "@nurse:"+federated, bob, 3); r.status != 403 {
		t.Fatalf("other inviter: %d %s, want 403", r.status, r.body)
	}
	// Inviter from outside the federation: refused before any callout, with the federation text.
	r = federationInvite(t, stack, "@doc:"+notFederated, bob, 4)
	wantJSON(t, r, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "The other party could not be contacted"})
}

func TestClientID(t *testing.T) {
	loginBody := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"alice-local-password"}`
	cases := []struct {
		name, method, path string
		headers            map[string]string
		body               string
		status             int
	}{
		{"approved, login", "POST", "/_matrix/client/v3/login", map[string]string{"User-Agent": approvedUA}, loginBody, 200},
		{"approved in X-TIM-User-Agent", "POST", "/_matrix/client/v3/login", map[string]string{"User-Agent": "curl/8", "X-TIM-User-Agent": approvedUA}, loginBody, 200},
		{"unapproved, login", "POST", "/_matrix/client/v3/login", map[string]string{"User-Agent": "e2e/1.0,rogue-client"}, loginBody, 401},
		{"no client id, login", "POST", "/_matrix/client/v3/login", nil, loginBody, 401},
		{"unapproved, elsewhere", "GET", "/_matrix/client/v3/account/whoami", map[string]string{"User-Agent": "e2e/1.0,rogue-client"}, "", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(stack.Homeserver.Seen())
			r := call(t, c.method, stack.ClientURL+c.path, c.headers, c.body)
			if r.status != c.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, c.status)
			}
			if c.status != 200 {
				if r.json(t)["errcode"] != "M_FORBIDDEN" {
					t.Fatalf("body %s, want M_FORBIDDEN", r.body)
				}
				if len(stack.Homeserver.Seen()) != before {
					t.Fatal("the refused request reached the homeserver")
				}
			}
		})
	}
}

// TestNoControlPlaneYet: a proxy that has never reached the control plane has no policy and no
// list, and answers everything with 503 M_UNAVAILABLE (fail closed).
func TestNoControlPlaneYet(t *testing.T) {
	ctx := context.Background()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL, _ := url.Parse(dead.URL)
	dead.Close() // nothing listens there any more
	hs, _ := url.Parse(stack.HomeserverURL)
	px, err := stack.NewProxy(ctx, "client", hs, deadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	front := httptest.NewServer(px)
	defer front.Close()
	before := len(stack.Homeserver.Seen())
	for _, path := range []string{"/_matrix/client/versions", "/_matrix/client/v3/login", "/.well-known/matrix/server"} {
		r := call(t, "GET", front.URL+path, map[string]string{"User-Agent": approvedUA}, "")
		if r.status != 503 || r.json(t)["errcode"] != "M_UNAVAILABLE" {
			t.Errorf("%s: %d %s, want 503 M_UNAVAILABLE", path, r.status, r.body)
		}
	}
	if len(stack.Homeserver.Seen()) != before {
		t.Error("a request reached the homeserver without a policy")
	}
}

// TestControlPlaneDown: on a stack of its own, the control plane goes away after the proxies hold
// policy and list. Checks decided in the filter keep working; an invite that needs the control
// plane's answer is refused (fail closed), even one the release list would allow.
func TestControlPlaneDown(t *testing.T) {
	st, err := startStack(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	bob := st.Users[1].MXID
	inviter := "@doc:" + federated
	addContact(t, st, bob, inviter)
	if r := federationInvite(t, st, inviter, bob, 1); r.status != 200 {
		t.Fatalf("with the control plane up: %d %s", r.status, r.body)
	}
	token := login(t, st, st.Users[0])

	if err := st.StopControl(); err != nil {
		t.Fatalf("control plane shutdown: %v", err)
	}
	if resp, err := http.Get(st.ControlURL + "/readyz"); err == nil {
		resp.Body.Close()
		t.Fatalf("control plane still answers: %d", resp.StatusCode)
	}

	before := seen(st, fedInviteSeen)
	r := federationInvite(t, st, inviter, bob, 2)
	if r.status != 403 || r.json(t)["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("invite with the control plane down: %d %s, want 403 M_FORBIDDEN", r.status, r.body)
	}
	if seen(st, fedInviteSeen) != before {
		t.Fatal("the invite reached the homeserver without a permission")
	}
	// The filter keeps its last good policy and list for what it decides alone.
	if r := createRoom(t, st, token, "@doc:"+federated); r.status != 200 {
		t.Fatalf("createRoom with the control plane down: %d %s, want 200", r.status, r.body)
	}
	wantJSON(t, createRoom(t, st, token, "@doc:"+notFederated), 403,
		map[string]any{"errcode": "M_FORBIDDEN", "error": notFederated + " could not be invited"})
}

// TestEgress: the homeserver's outbound federation traffic through the egress proxy (an HTTP
// forward proxy). The destination is X-Matrix's destination when sent, else the Host.
func TestEgress(t *testing.T) {
	pu, _ := url.Parse(stack.EgressURL)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	own := stack.ServerName
	cases := []struct {
		name, host, destination string
		status                  int
	}{
		{"own domain", own, "", 200},
		{"own domain, X-Matrix destination own", own, own, 200},
		{"domain outside the federation", notFederated, "", 403},
		{"X-Matrix destination outside the federation", own, notFederated, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := seen(stack, "GET /_matrix/federation/v1/version")
			req, _ := http.NewRequest("GET", "http://"+c.host+"/_matrix/federation/v1/version", nil)
			if c.destination != "" {
				req.Header.Set("Authorization", `X-Matrix origin="`+own+`",destination="`+c.destination+`",key="ed25519:1",sig="c2ln"`)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, c.status)
			}
			reached := seen(stack, "GET /_matrix/federation/v1/version") - before
			if c.status == 200 && reached != 1 || c.status != 200 && reached != 0 {
				t.Fatalf("homeserver saw %d requests for status %d", reached, c.status)
			}
			if c.status == 403 && !strings.Contains(string(b), "The other party could not be contacted") {
				t.Fatalf("body %s", b)
			}
		})
	}
}

// TestBadBodies: what cannot be read is refused precisely before the policy runs.
func TestBadBodies(t *testing.T) {
	token := login(t, stack, stack.Users[0])
	h := map[string]string{"User-Agent": approvedUA, "Authorization": "Bearer " + token}
	cases := []struct {
		name, body string
		status     int
		errcode    string
	}{
		{"not JSON", `{"invite":`, 400, "M_NOT_JSON"},
		{"invitee not a user id", `{"invite":["doc-at-klinik"]}`, 400, "M_INVALID_PARAM"},
		{"body over the cap", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "M_TOO_LARGE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := seen(stack, createRoomSeen)
			r := call(t, "POST", stack.ClientURL+"/_matrix/client/v3/createRoom", h, c.body)
			if r.status != c.status || r.json(t)["errcode"] != c.errcode {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, c.status, c.errcode)
			}
			if seen(stack, createRoomSeen) != before {
				t.Fatal("a refused request reached the homeserver")
			}
		})
	}
}
