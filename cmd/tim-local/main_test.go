package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/timfd/fachdienst/internal/localstack"
	"github.com/timfd/fachdienst/internal/syncbuf"
)

// TestRun starts the local stack on free ports, performs every printed example over HTTP and checks
// what a user would see, then stops it and expects a clean shutdown.
func TestRun(t *testing.T) {
	if err := localstack.MissingDendrite(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncbuf.Buffer
	ready := make(chan *localstack.Stack, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{stack: localstack.Options{DataDir: t.TempDir(), PolicyDir: "../../policies", PolicyRefresh: time.Second}, out: &out},
			func(st *localstack.Stack) { ready <- st })
	}()
	var st *localstack.Stack
	select {
	case st = <-ready:
	case err := <-done:
		t.Fatalf("run ended before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("not ready")
	}

	printed := out.String()
	for _, want := range []string{"STAND-IN", st.OperatorEnvFile(), "tim-ctl policy status", "directory ../../policies", st.ClientURL, st.FederationURL, st.EgressURL, st.ControlURL, st.HomeserverURL, st.VZDURL, st.PushURL, st.Users[0].MXID, "curl -s"} {
		if want == "" || !strings.Contains(printed, want) {
			t.Errorf("overview lacks %q:\n%s", want, printed)
		}
	}
	if st.PushError != nil {
		t.Errorf("push gateway not started: %v", st.PushError)
	}

	token := ""
	for _, ex := range examples(st) {
		t.Run(ex.title, func(t *testing.T) {
			status, body := perform(t, ex, token)
			if status != ex.status || !strings.Contains(body, ex.want) {
				t.Fatalf("%s %s: got %d %s, want %d with %q", ex.method, ex.url, status, body, ex.status, ex.want)
			}
			if ex.setsTok {
				var v struct {
					AccessToken string `json:"access_token"`
				}
				if err := json.Unmarshal([]byte(body), &v); err != nil || v.AccessToken == "" {
					t.Fatalf("no access token in %s", body)
				}
				token = v.AccessToken
			}
			if !strings.Contains(printed, ex.curl()) {
				t.Errorf("example not printed: %s", ex.curl())
			}
		})
	}

	t.Run("a Matrix client library: login, createRoom, message, sync", func(t *testing.T) { matrixClient(t, st) })
	t.Run("the invitee's pusher: encrypted, fixed size, no content", func(t *testing.T) { pushSink(t, st) })

	// The push gateway answers its API (an empty notification is a precise 400, not a crash).
	resp, err := http.Post(st.PushURL+"/_matrix/push/v1/notify", "application/json", strings.NewReader(`{"notification":{"devices":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("push gateway: notify without devices: %d, want 400", resp.StatusCode)
	}

	t.Run("SIGHUP reloads the policy and the stack keeps serving", func(t *testing.T) { sighup(t, st, &out) })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("did not stop")
	}
	if !strings.Contains(out.String(), "tim-local: stopped") {
		t.Errorf("no clean stop reported:\n%s", out.String())
	}
	// Nothing listens any more.
	if _, err := http.Get(st.ClientURL + "/_matrix/client/versions"); err == nil {
		t.Errorf("client proxy still answers after shutdown")
	}
}

func sighup(t *testing.T, st *localstack.Stack, out *syncbuf.Buffer) {
	before := st.Control.Policy.Status()
	pid, err := os.ReadFile(filepath.Join(filepath.Dir(st.OperatorEnvFile()), "tim-local.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file: %q %v", pid, err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "tim-local: SIGHUP: policy revision") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload reported:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := st.Control.Policy.Status(); after.Accepted != before.Accepted+1 || after.LastError != "" {
		t.Errorf("reloads accepted %d -> %d (%s)", before.Accepted, after.Accepted, after.LastError)
	}
	ex := examples(st)[1] // a refusal by the policy: the filter still decides
	if status, body := perform(t, ex, ""); status != ex.status || !strings.Contains(body, ex.want) {
		t.Errorf("after SIGHUP: %d %s", status, body)
	}
}

func perform(t *testing.T, ex example, token string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 15 * time.Second}
	if ex.proxy != "" {
		pu, _ := url.Parse(ex.proxy)
		tr := &http.Transport{Proxy: http.ProxyURL(pu)}
		if ex.cacert != "" {
			pem, err := os.ReadFile(ex.cacert)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		}
		client.Transport = tr
	}
	var body io.Reader
	if ex.body != "" {
		body = strings.NewReader(ex.body)
	}
	req, err := http.NewRequest(ex.method, ex.url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range ex.headers {
		req.Header.Set(h[0], h[1])
	}
	if ex.auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// matrixClient uses the stack as a Matrix client would (mautrix, the approved client id in its
// User-Agent): the message it sends comes back in its sync from Dendrite, through the proxy.
func matrixClient(t *testing.T, st *localstack.Stack) {
	ctx := context.Background()
	cli, err := mautrix.NewClient(st.ClientURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.UserAgent = "mautrix-go/0.33 test," + localstack.ApprovedClientID
	local := strings.TrimPrefix(strings.SplitN(st.Users[0].MXID, ":", 2)[0], "@")
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: local},
		Password:   st.Users[0].Password, StoreCredentials: true}); err != nil {
		t.Fatalf("login: %v", err)
	}
	room, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{id.UserID(st.Users[1].MXID)}})
	if err != nil {
		t.Fatalf("createRoom: %v", err)
	}
	sent, err := cli.SendText(ctx, room.RoomID, "hello")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	since := ""
	for i := 0; i < 20; i++ { // long polls: Dendrite's sync API catches up asynchronously
		resp, err := cli.SyncRequest(ctx, 2000, since, "", false, event.PresenceOffline)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		for _, ev := range resp.Rooms.Join[room.RoomID].Timeline.Events {
			if ev.ID == sent.EventID {
				return
			}
		}
		since = resp.NextBatch
	}
	t.Fatal("the message never came back in the sync")
}

// pushSink: alice's createRoom invited bob, whose pusher delivers through the push gateway to the push
// sink. The provider carried ciphertext of fixed size; decrypted, the notice holds ids and counts, not
// the message, its sender or the room's name (A_22808, A_22965).
func pushSink(t *testing.T, st *localstack.Stack) {
	var got []localstack.PushArrival
	deadline := time.Now().Add(30 * time.Second)
	for len(got) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived at the push sink")
		}
		time.Sleep(100 * time.Millisecond)
		got = st.PushSink.Arrivals()
	}
	a := got[0]
	t.Logf("arrived at the push sink: %d bytes, %s, decrypted %s", a.Bytes, a.ContentEncoding, a.Decrypted)
	if a.Error != "" || a.ContentEncoding != "aes128gcm" || a.Subscriber != "bob" {
		t.Fatalf("arrival: %+v", a)
	}
	var n struct {
		EventID string `json:"event_id"`
		RoomID  string `json:"room_id"`
		Counts  struct {
			Unread *int `json:"unread"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(a.Decrypted, &n); err != nil || n.EventID == "" || n.RoomID == "" || n.Counts.Unread == nil {
		t.Fatalf("decrypted: %s (%v)", a.Decrypted, err)
	}
	var fields map[string]any
	_ = json.Unmarshal(a.Decrypted, &fields)
	for k := range fields {
		if k != "event_id" && k != "room_id" && k != "prio" && k != "counts" {
			t.Errorf("the notice carries %q: %s", k, a.Decrypted)
		}
	}
	for _, leak := range []string{"hello", st.Users[0].MXID, "m.room.member"} {
		if strings.Contains(string(a.Decrypted), leak) {
			t.Errorf("the notice contains %q: %s", leak, a.Decrypted)
		}
	}
	// What the sink shows over HTTP.
	resp, err := http.Get(st.PushURL + "/push-sink/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), n.EventID) {
		t.Errorf("GET /push-sink/: %d %s", resp.StatusCode, b)
	}
}
