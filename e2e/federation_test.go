package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/timfd/fachdienst/internal/localstack"
	"github.com/timfd/fachdienst/proxyhost"
	vzdstandin "github.com/timfd/fachdienst/standin/vzd"
)

// The two-organisation federation: A and B are messenger services, each a real Dendrite behind its
// own client-server, server-server and egress proxies (the compiled filter in proxyhost), each with
// its own control plane, both in the federation list of one VZD stand-in. C and D are Dendrites of
// servers outside the federation (D joins it during the test); their egress has no filter. Server
// names resolve through the egress forwarders' routes, never through DNS.
const (
	domA = "a.localhost"
	domB = "b.localhost"
	domC = "c.localhost"
	domD = "d.localhost"

	mautrixUA = "mautrix-go/0.33 e2e," + localstack.ApprovedClientID
	password  = "e2e-password-1"
)

type federation struct {
	vzd    *vzdstandin.Server
	a, b   *localstack.Stack
	c, d   *localstack.Dendrite
	cSeen  *statusLog // answers C's egress received
	dSeen  *statusLog
	direct map[string]string // server name -> Dendrite URL, to read back what a homeserver holds
	peers  map[string]*localstack.Dendrite
	dir    string
	vzdURL string
}

// statusLog records the answers an unfiltered egress received, by host.
type statusLog struct {
	mu sync.Mutex
	m  map[string][]int
}

func (l *statusLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(rec, r)
		l.mu.Lock()
		l.m[hostOf(r.Host)] = append(l.m[hostOf(r.Host)], rec.status)
		l.mu.Unlock()
	})
}

func (l *statusLog) all(host string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.m[host]...)
}

func (l *statusLog) count(host string, status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.m[host] {
		if s == status {
			n++
		}
	}
	return n
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

func hostOf(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func requireDendrite(t *testing.T) {
	t.Helper()
	if err := localstack.MissingDendrite(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs Dendrite: %v", err)
		}
		t.Skip(err)
	}
}

func startFederation(t *testing.T) *federation {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &federation{cSeen: &statusLog{m: map[string][]int{}}, dSeen: &statusLog{m: map[string][]int{}}, direct: map[string]string{},
		peers: map[string]*localstack.Dendrite{}}
	var err error
	if f.vzd, err = localstack.NewVZD(
		vzdstandin.Domain{Domain: domA, TelematikID: "1-2-e2e-a", TimAnbieter: "Provider A"},
		vzdstandin.Domain{Domain: domB, TelematikID: "1-2-e2e-b", TimAnbieter: "Provider B"},
	); err != nil {
		t.Fatal(err)
	}
	vzdSrv := httptest.NewServer(f.vzd)
	t.Cleanup(vzdSrv.Close)
	f.vzdURL = vzdSrv.URL

	shapes := shapeRecorder(t)
	start := func(name string) *localstack.Stack {
		st, err := localstack.Start(ctx, localstack.Options{
			DataDir: filepath.Join(dir, name), ServerName: name, NoPush: true,
			VZD: f.vzd, VZDURL: vzdSrv.URL, RefetchMinInterval: time.Millisecond,
			RequestLog: shapes,
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := st.Close(cctx); err != nil {
				t.Errorf("stop %s: %v", name, err)
			}
		})
		f.direct[name] = st.HomeserverURL
		return st
	}
	f.a, f.b = start(domA), start(domB)
	f.dir = dir
	f.c, f.d = f.peer(t, domC, "", f.cSeen), f.peer(t, domD, "", f.dSeen)

	// Each organisation's egress forwarder reaches the other's server-server proxy, and the servers
	// outside the federation directly: what refuses them is the filter, not a missing route.
	f.a.Routes.Set(domB, mustURL(f.b.FederationURL))
	f.b.Routes.Set(domA, mustURL(f.a.FederationURL))
	for _, st := range []*localstack.Stack{f.a, f.b} {
		st.Routes.Set(domC, mustURL(f.c.URL))
		st.Routes.Set(domD, mustURL(f.d.URL))
	}
	return f
}

// peer starts a Dendrite for name without proxies of its own: its egress terminates tunnels
// without a filter (answers recorded in seen) and reaches A and B's server-server proxies.
// wellKnown is what it announces at /.well-known/matrix/server ("" = name:8448).
func (f *federation) peer(t *testing.T, name, wellKnown string, seen *statusLog) *localstack.Dendrite {
	t.Helper()
	ctx := context.Background()
	ca, err := proxyhost.LoadOrCreateLocalCA(filepath.Join(f.dir, name, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	routes := localstack.NewRoutes()
	routes.Set(domA, mustURL(f.a.FederationURL))
	routes.Set(domB, mustURL(f.b.FederationURL))
	egress := httptest.NewServer(proxyhost.ConnectTunnel(seen.wrap(localstack.NewForwarder(routes)), ca))
	t.Cleanup(egress.Close)
	bin, err := localstack.DendriteBinDir()
	if err != nil {
		t.Fatal(err)
	}
	d, err := localstack.StartDendrite(ctx, localstack.DendriteConfig{
		BinDir: bin, Dir: filepath.Join(f.dir, name, "dendrite"), ServerName: name,
		HTTPSProxy: egress.URL, TrustPEM: ca.CertPEM(), WellKnownServer: wellKnown,
	})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { d.Stop() })
	routes.Set(name, mustURL(d.URL))
	f.direct[name] = d.URL
	f.peers[name] = d
	return d
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// user registers an account on the homeserver of domain and logs it in through the client-server
// proxy (servers outside the federation: directly) with mautrix.
func (f *federation) user(t *testing.T, domain, local string) *mautrix.Client {
	t.Helper()
	ctx := context.Background()
	var hs *localstack.Dendrite
	base := f.direct[domain]
	switch domain {
	case domA:
		hs, base = f.a.Dendrite, f.a.ClientURL
	case domB:
		hs, base = f.b.Dendrite, f.b.ClientURL
	default:
		hs = f.peers[domain]
	}
	pw := password
	if local == "alice" || local == "bob" {
		pw = local + "-local-password" // the stacks' demo users
	}
	if _, err := hs.Register(ctx, local, pw, false); err != nil {
		t.Fatal(err)
	}
	cli, err := mautrix.NewClient(base, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.UserAgent = mautrixUA
	cli.DefaultHTTPRetries = 0
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: local},
		Password:         pw,
		StoreCredentials: true,
	}); err != nil {
		t.Fatalf("login %s on %s: %v", local, domain, err)
	}
	return cli
}

// onHomeserver is cli's session talking to its Dendrite directly, to read back what it holds.
func (f *federation) onHomeserver(t *testing.T, cli *mautrix.Client) *mautrix.Client {
	t.Helper()
	d, err := mautrix.NewClient(f.direct[cli.UserID.Homeserver()], cli.UserID, cli.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	d.DefaultHTTPRetries = 0
	return d
}

func status(err error) int {
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.Response != nil {
		return he.Response.StatusCode
	}
	return 0
}

// membership reads userID's membership in room from the homeserver behind cli ("" when it holds none).
func membership(t *testing.T, cli *mautrix.Client, room id.RoomID, userID id.UserID) string {
	t.Helper()
	var m event.MemberEventContent
	err := cli.StateEvent(context.Background(), room, event.StateMember, userID.String(), &m)
	if status(err) == http.StatusNotFound {
		return ""
	}
	if err != nil {
		t.Fatalf("membership of %s in %s: %v", userID, room, err)
	}
	return string(m.Membership)
}

// invites returns the rooms cli is invited to, from a full sync.
func invites(t *testing.T, cli *mautrix.Client) map[id.RoomID]bool {
	t.Helper()
	resp, err := cli.SyncRequest(context.Background(), 0, "", "", true, event.PresenceOffline)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	out := map[id.RoomID]bool{}
	for r := range resp.Rooms.Invite {
		out[r] = true
	}
	return out
}

// eventually polls ok for up to 30 s.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// addRelease puts inviter on owner's release list through owner's control plane, authenticated with
// an OpenID token owner's Dendrite issued.
func addRelease(t *testing.T, st *localstack.Stack, owner *mautrix.Client, inviter id.UserID) {
	t.Helper()
	tok, err := owner.RequestOpenIDToken(context.Background())
	if err != nil {
		t.Fatalf("openid token: %v", err)
	}
	body := fmt.Sprintf(`{"displayName":"Dr. Example","mxid":%q,"inviteSettings":{"start":%d}}`, inviter, time.Now().Add(-time.Minute).Unix())
	r := call(t, "POST", st.ControlURL+"/tim-contact-mgmt/v1.0.2/contacts",
		map[string]string{"Authorization": "Bearer " + tok.AccessToken, "Mxid": owner.UserID.String(), "Content-Type": "application/json"}, body)
	if r.status != 200 {
		t.Fatalf("contact management: %d %s", r.status, r.body)
	}
}

func joinedRooms(t *testing.T, cli *mautrix.Client) []id.RoomID {
	t.Helper()
	r, err := cli.JoinedRooms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.JoinedRooms
}

// egressThroughTunnel sends a server-server request through st's egress proxy as homeservers do:
// CONNECT host:8448 (proto HTTP/1.1 as Dendrite's Go transport, HTTP/1.0 as Synapse), TLS with the
// egress proxy's local CA, then the request inside.
func egressThroughTunnel(t *testing.T, st *localstack.Stack, proto, host, path, xmatrix string) result {
	t.Helper()
	return egressTunnelDo(t, st, proto, host, "GET", path, xmatrix, "")
}

// egressTunnelDo is egressThroughTunnel with any method and a JSON body.
func egressTunnelDo(t *testing.T, st *localstack.Stack, proto, host, method, path, xmatrix, body string) result {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(st.EgressURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if proto == "HTTP/1.0" {
		fmt.Fprintf(conn, "CONNECT %s:8448 HTTP/1.0\r\n\r\n", host)
	} else {
		fmt.Fprintf(conn, "CONNECT %s:8448 HTTP/1.1\r\nHost: %s:8448\r\n\r\n", host, host)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: st.CA.Pool(), ServerName: host})
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "https://"+host+":8448"+path, rd)
	if xmatrix != "" {
		req.Header.Set("Authorization", xmatrix)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := req.Write(tc); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b)}
}

// TestTwoOrganisations drives two federated Dendrites through their proxies with a real Matrix
// client library, and reads back what each homeserver holds after every step.
func TestTwoOrganisations(t *testing.T) {
	requireDendrite(t)
	ctx := context.Background()
	f := startFederation(t)
	alice := f.user(t, domA, "alice")
	bob := f.user(t, domB, "bob")
	aliceHS, bobHS := f.onHomeserver(t, alice), f.onHomeserver(t, bob)

	t.Run("login with an unapproved client id", func(t *testing.T) {
		devices := func() int {
			d, err := aliceHS.GetDevicesInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return len(d.Devices)
		}
		before := devices()
		defer func() {
			if after := devices(); after != before {
				t.Errorf("A holds %d devices of alice, before %d: the refused login reached Dendrite", after, before)
			}
		}()
		cli, _ := mautrix.NewClient(f.a.ClientURL, "", "")
		cli.UserAgent = "mautrix-go/0.33 e2e,unapproved-client"
		cli.DefaultHTTPRetries = 0
		_, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "alice"}, Password: "alice-local-password"})
		if status(err) != 401 || !errors.Is(err, mautrix.MForbidden) {
			t.Fatalf("login: %v, want 401 M_FORBIDDEN", err)
		}
	})

	var room id.RoomID
	t.Run("stage 2: release list; invite, join and a message through both proxies", func(t *testing.T) {
		addRelease(t, f.b, bob, alice.UserID)
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
		if err != nil {
			t.Fatalf("createRoom: %v", err)
		}
		room = resp.RoomID
		eventually(t, "bob's homeserver holds the invite", func() bool { return invites(t, bobHS)[room] })
		if _, err := bob.JoinRoomByID(ctx, room); err != nil {
			t.Fatalf("join: %v", err)
		}
		sent, err := alice.SendText(ctx, room, "hello from A")
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		eventually(t, "alice's message in bob's timeline on B", func() bool {
			msgs, err := bobHS.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
			if err != nil {
				return false
			}
			for _, ev := range msgs.Chunk {
				if ev.ID == sent.EventID && ev.Sender == alice.UserID {
					ev.Content.ParseRaw(ev.Type)
					return ev.Content.AsMessage().Body == "hello from A"
				}
			}
			return false
		})
		if m := membership(t, bobHS, room, bob.UserID); m != "join" {
			t.Fatalf("B holds bob's membership %q, want join", m)
		}
		eventually(t, "A holds bob's join", func() bool { return membership(t, aliceHS, room, bob.UserID) == "join" })
	})

	t.Run("stage 3: both in the directory", func(t *testing.T) {
		carl, dora := f.user(t, domA, "carl"), f.user(t, domB, "dora")
		f.vzd.SetLocation(carl.UserID.String(), "pract")
		f.vzd.SetLocation(dora.UserID.String(), "pract")
		resp, err := carl.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{dora.UserID}})
		if err != nil {
			t.Fatalf("createRoom: %v", err)
		}
		eventually(t, "dora's homeserver holds the invite", func() bool { return invites(t, f.onHomeserver(t, dora))[resp.RoomID] })
	})

	t.Run("neither release nor directory: refused, no invite on B", func(t *testing.T) {
		erin, fred := f.user(t, domA, "erin"), f.user(t, domB, "fred")
		_, err := erin.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{fred.UserID}})
		if status(err) != 403 {
			t.Fatalf("createRoom: %v, want 403", err)
		}
		if inv := invites(t, f.onHomeserver(t, fred)); len(inv) != 0 {
			t.Fatalf("B holds invites for fred: %v", inv)
		}
	})

	t.Run("the invitee's permission configuration blocks (read from Dendrite as an application service)", func(t *testing.T) {
		hank, gil := f.user(t, domA, "hank"), f.user(t, domB, "gil")
		f.vzd.SetLocation(hank.UserID.String(), "pract")
		f.vzd.SetLocation(gil.UserID.String(), "pract")
		if err := gil.SetAccountData(ctx, "de.gematik.tim.account.permissionconfig.pro.v1", map[string]any{"defaultSetting": "block all"}); err != nil {
			t.Fatalf("account data: %v", err)
		}
		_, err := hank.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{gil.UserID}})
		if status(err) != 403 {
			t.Fatalf("createRoom: %v, want 403", err)
		}
		if inv := invites(t, f.onHomeserver(t, gil)); len(inv) != 0 {
			t.Fatalf("B holds invites for gil: %v", inv)
		}
	})

	t.Run("createRoom with two invitees: 400, no room", func(t *testing.T) {
		before := joinedRooms(t, aliceHS)
		dora := id.NewUserID("dora", domB)
		_, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bob.UserID, dora}})
		if status(err) != 400 {
			t.Fatalf("createRoom: %v, want 400", err)
		}
		if after := joinedRooms(t, aliceHS); len(after) != len(before) {
			t.Fatalf("A holds %d rooms of alice, before %d", len(after), len(before))
		}
	})

	carol := f.user(t, domC, "carol")
	t.Run("invites to a server outside the federation", func(t *testing.T) {
		own, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
		if err != nil {
			t.Fatal(err)
		}
		member := map[string]any{"membership": "invite"}
		tries := []struct {
			name string
			do   func() error
		}{
			{"createRoom invite", func() error {
				_, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{carol.UserID}})
				return err
			}},
			{"POST /rooms/{id}/invite", func() error {
				_, err := alice.InviteUser(ctx, own.RoomID, &mautrix.ReqInviteUser{UserID: carol.UserID})
				return err
			}},
			{"PUT /rooms/{id}/state/m.room.member/{user}", func() error {
				_, err := alice.SendStateEvent(ctx, own.RoomID, event.StateMember, carol.UserID.String(), member)
				return err
			}},
			{"createRoom initial_state", func() error {
				_, err := alice.MakeFullRequest(ctx, mautrix.FullRequest{
					Method: http.MethodPost, URL: alice.BuildClientURL("v3", "createRoom"),
					RequestJSON: map[string]any{"initial_state": []any{map[string]any{
						"type": "m.room.member", "state_key": carol.UserID.String(), "content": member,
					}}},
				})
				return err
			}},
		}
		for _, try := range tries {
			t.Run(try.name, func(t *testing.T) {
				// Refused by the client-server proxy, with the specification's text; a refusal that
				// Dendrite reports after its egress was refused would mean the filter let it in.
				err := try.do()
				var he mautrix.HTTPError
				if !errors.As(err, &he) || he.Response.StatusCode != 403 || he.RespError == nil ||
					he.RespError.Err != domC+" could not be invited" {
					t.Errorf("%v, want 403 %q", err, domC+" could not be invited")
				}
				for _, r := range joinedRooms(t, aliceHS) {
					if m := membership(t, aliceHS, r, carol.UserID); m != "" {
						t.Errorf("A holds carol's membership %q in %s", m, r)
					}
				}
			})
		}
		if inv := invites(t, f.onHomeserver(t, carol)); len(inv) != 0 {
			t.Fatalf("C holds invites for carol: %v", inv)
		}
	})

	t.Run("the server outside the federation cannot reach A or B", func(t *testing.T) {
		for _, target := range []*mautrix.Client{alice, bob} {
			targetHS := f.onHomeserver(t, target)
			before := invites(t, targetHS)
			host := target.UserID.Homeserver()
			refusedBefore := f.cSeen.count(host, 403)
			_, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{target.UserID}})
			if err == nil {
				t.Errorf("C's invite to %s reported success", host)
			}
			if f.cSeen.count(host, 403) <= refusedBefore {
				t.Errorf("%s's server-server proxy did not refuse C with 403 (answers: %v)", host, f.cSeen.all(host))
			}
			if after := invites(t, targetHS); len(after) != len(before) {
				t.Errorf("%s holds a new invite: %v", host, after)
			}
		}
		// A's egress refuses requests to C inside CONNECT tunnels of either protocol version, and
		// lets the same request to B through to B's homeserver.
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			r := egressThroughTunnel(t, f.a, proto, domC, "/_matrix/federation/v1/version",
				`X-Matrix origin="`+domA+`",destination="`+domC+`",key="ed25519:auto",sig="c2ln"`)
			wantJSON(t, r, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "The other party could not be contacted"})
			r = egressThroughTunnel(t, f.a, proto, domB, "/_matrix/federation/v1/version",
				`X-Matrix origin="`+domA+`",destination="`+domB+`",key="ed25519:auto",sig="c2ln"`)
			if r.status != 200 || !strings.Contains(r.body, `"server"`) {
				t.Fatalf("%s egress to B: %d %s", proto, r.status, r.body)
			}
		}
	})

	// The forwarder (Envoy: the dynamic forward proxy) sends a request to the host it names; a
	// request naming C as its host and B as its X-Matrix destination must not reach C.
	t.Run("A's egress: host outside the federation behind a federated X-Matrix destination", func(t *testing.T) {
		xm := `X-Matrix origin="` + domA + `",destination="` + domB + `",key="ed25519:auto",sig="c2ln"`
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			if r := egressThroughTunnel(t, f.a, proto, domC, "/_matrix/federation/v1/version", xm); r.status != 403 {
				t.Errorf("%s tunnel to C: %d %s, want 403", proto, r.status, r.body)
			}
		}
		req, _ := http.NewRequest("GET", f.a.EgressURL+"/_matrix/federation/v1/version", nil)
		req.Host = domC
		req.Header.Set("Authorization", xm)
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("plain forward-proxy request to C: %d %s, want 403", resp.StatusCode, b)
		}
	})

	t.Run("a domain added at the VZD becomes reachable", func(t *testing.T) {
		dave := f.user(t, domD, "dave")
		probe := func() int {
			return call(t, "GET", f.a.FederationURL+"/_matrix/federation/v1/query/profile?user_id="+url.QueryEscape(alice.UserID.String()),
				map[string]string{"Authorization": `X-Matrix origin="` + domD + `",destination="` + domA + `",key="ed25519:auto",sig="c2ln"`}, "").status
		}
		if s := probe(); s != 403 {
			t.Fatalf("before: A's server-server proxy answered %d, want 403", s)
		}
		f.vzd.AddDomain(vzdstandin.Domain{Domain: domD, TelematikID: "1-2-e2e-d", TimAnbieter: "Provider D"})
		for _, st := range []*localstack.Stack{f.a, f.b} {
			if err := st.Control.Fed.Refresh(ctx); err != nil { // the control planes' poll, at once
				t.Fatal(err)
			}
		}
		eventually(t, "A's server-server proxy lets D's requests through", func() bool { return probe() != 403 })
		f.vzd.SetLocation(dave.UserID.String(), "pract")
		f.vzd.SetLocation(alice.UserID.String(), "pract")
		resp, err := dave.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice.UserID}})
		if err != nil {
			t.Fatalf("D's invite to alice: %v", err)
		}
		eventually(t, "A holds D's invite for alice", func() bool { return invites(t, aliceHS)[resp.RoomID] })
	})

	t.Run("control plane stopped: stage 2/3 invites refused, local traffic flows", func(t *testing.T) {
		ivy := f.user(t, domB, "ivy")
		f.vzd.SetLocation(ivy.UserID.String(), "pract")
		if err := f.b.StopControl(); err != nil {
			t.Fatal(err)
		}
		_, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{ivy.UserID}})
		if status(err) != 403 {
			t.Fatalf("createRoom: %v, want 403", err)
		}
		if inv := invites(t, f.onHomeserver(t, ivy)); len(inv) != 0 {
			t.Fatalf("B holds invites for ivy: %v", inv)
		}
		// Local traffic on B: a room, a message, a sync.
		own, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
		if err != nil {
			t.Fatalf("local createRoom: %v", err)
		}
		sent, err := bob.SendText(ctx, own.RoomID, "local message")
		if err != nil {
			t.Fatalf("local send: %v", err)
		}
		// Dendrite's sync API learns of the event asynchronously (from the roomserver's output stream).
		eventually(t, "bob's own message in his sync through B's proxy", func() bool {
			sync, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			for _, ev := range sync.Rooms.Join[own.RoomID].Timeline.Events {
				if ev.ID == sent.EventID {
					return true
				}
			}
			return false
		})
		// And the federation that was set up before still carries messages from A to B.
		sent, err = alice.SendText(ctx, room, "still here")
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		eventually(t, "alice's second message on B", func() bool {
			var ev event.Event
			_, err := bobHS.MakeRequest(ctx, http.MethodGet, bobHS.BuildClientURL("v3", "rooms", room, "event", sent.EventID), nil, &ev)
			return err == nil
		})
	})
}
