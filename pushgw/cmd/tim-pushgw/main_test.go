package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/internal/syncbuf"
	"github.com/timfd/fachdienst/pushgw/config"
	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/providertest"
	"github.com/timfd/fachdienst/pushgw/push"
	"github.com/timfd/fachdienst/pushgw/service"
)

// fakes are the three local providers and a config file pointing at them.
type fakes struct {
	apns *providertest.APNs
	fcm  *providertest.FCM
	web  *providertest.WebPush
}

func newFakes(t *testing.T) *fakes {
	f := &fakes{apns: providertest.NewAPNs("de.example.tim"), fcm: providertest.NewFCM("tim-test"), web: providertest.NewWebPush()}
	t.Cleanup(func() { f.apns.Server.Close(); f.fcm.Server.Close(); f.web.Server.Close() })
	return f
}

func (f *fakes) writeConfig(t *testing.T, dir, maxDelay string) string {
	t.Helper()
	files := map[string][]byte{
		"apns.p8":     f.apns.KeyP8,
		"apns-ca.pem": providertest.CAPEM(f.apns.Server),
		"fcm-sa.json": f.fcm.ServiceAccountJSON,
		"fcm-ca.pem":  providertest.CAPEM(f.fcm.Server),
		"vapid.key":   []byte(f.web.VAPIDPrivateKey),
	}
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
log_level: debug
max_delay: %s
shutdown_grace: 5s
queue:
  capacity: 1000
  backoff: 10ms
  max_backoff: 50ms
  max_attempts: 4
  spool: spool.jsonl
apps:
  de.example.tim.ios:
    type: apns
    key_file: apns.p8
    key_id: %s
    team_id: %s
    topic: de.example.tim
    endpoint: %s
    ca_file: apns-ca.pem
  de.example.tim.android:
    type: fcm
    service_account_file: fcm-sa.json
    endpoint: %s
    ca_file: fcm-ca.pem
  de.example.tim.web:
    type: webpush
    vapid_public_key: %s
    vapid_private_key_file: vapid.key
    subscriber: mailto:ops@example.org
    allowed_endpoints: ["%s/push/"]
`, maxDelay, f.apns.KeyID, f.apns.TeamID, f.apns.Server.URL, f.fcm.Server.URL, f.web.VAPIDPublicKey, f.web.Server.URL)
	p := filepath.Join(dir, "pushgw.yaml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

type dev struct {
	AppID   string         `json:"app_id"`
	PushKey string         `json:"pushkey"`
	Data    map[string]any `json:"data"`
}

func notify(t *testing.T, url string, eventID string, devs []dev) []string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"notification": map[string]any{
		"event_id": eventID, "room_id": "!room:tim.example.org", "type": "m.room.message",
		"sender": "@alice:tim.example.org", "sender_display_name": "Dr. Alice", "room_name": "Station 3",
		"prio":    "high",
		"content": map[string]any{"msgtype": "m.text", "body": "Befund: vertraulich"},
		"counts":  map[string]any{"unread": 3},
		"devices": devs,
	}})
	resp, err := http.Post(url+gateway.NotifyPath, "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var out struct {
		Rejected []string `json:"rejected"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Rejected
}

// recorder is what the three fakes share.
type recorder interface {
	SetScript(providertest.Script)
	Pushes() []providertest.Push
	Delivered() int
	Attempts(string) int
	Errors() []string
}

// Against each provider: delivered and encrypted, retried on 429/5xx,
// rejected on "unregistered" — reported on the next notify.
func TestProvidersEndToEnd(t *testing.T) {
	type tc struct {
		name    string
		rec     func(f *fakes) recorder
		devices func(f *fakes) (ok, flaky, gone dev, keys map[string]providertest.DeviceKeys)
		gone    providertest.Reply
		open    func(t *testing.T, p providertest.Push, keys providertest.DeviceKeys) push.Notice
	}
	keyed := func(app string) func(f *fakes) (dev, dev, dev, map[string]providertest.DeviceKeys) {
		return func(f *fakes) (dev, dev, dev, map[string]providertest.DeviceKeys) {
			keys := map[string]providertest.DeviceKeys{}
			mk := func(token string) dev {
				k := providertest.NewDeviceKeys()
				keys[token] = k
				return dev{AppID: app, PushKey: token, Data: k.Data()}
			}
			return mk("tok-ok"), mk("tok-flaky"), mk("tok-gone"), keys
		}
	}
	cases := []tc{
		{
			name: "apns", rec: func(f *fakes) recorder { return f.apns },
			devices: keyed("de.example.tim.ios"),
			gone:    providertest.Reply{Status: 410, Body: `{"reason":"Unregistered"}`},
			open: func(t *testing.T, p providertest.Push, k providertest.DeviceKeys) push.Notice {
				var body struct {
					APS map[string]any `json:"aps"`
					Enc string         `json:"enc"`
				}
				require.NoError(t, json.Unmarshal(p.Body, &body))
				require.EqualValues(t, 1, body.APS["mutable-content"])
				require.Equal(t, "10", p.Headers["apns-priority"])
				var n push.Notice
				require.NoError(t, k.OpenEnc(body.Enc, &n))
				return n
			},
		},
		{
			name: "apns bad device token", rec: func(f *fakes) recorder { return f.apns },
			devices: keyed("de.example.tim.ios"),
			gone:    providertest.Reply{Status: 400, Body: `{"reason":"BadDeviceToken"}`},
			open: func(t *testing.T, p providertest.Push, k providertest.DeviceKeys) push.Notice {
				var body struct{ Enc string }
				require.NoError(t, json.Unmarshal(p.Body, &body))
				var n push.Notice
				require.NoError(t, k.OpenEnc(body.Enc, &n))
				return n
			},
		},
		{
			name: "fcm", rec: func(f *fakes) recorder { return f.fcm },
			devices: keyed("de.example.tim.android"),
			gone:    providertest.Unregistered,
			open: func(t *testing.T, p providertest.Push, k providertest.DeviceKeys) push.Notice {
				var body struct {
					Message struct {
						Token        string            `json:"token"`
						Data         map[string]string `json:"data"`
						Notification any               `json:"notification"`
					} `json:"message"`
				}
				require.NoError(t, json.Unmarshal(p.Body, &body))
				require.Nil(t, body.Message.Notification, "data-only message")
				require.Len(t, body.Message.Data, 1)
				var n push.Notice
				require.NoError(t, k.OpenEnc(body.Message.Data["enc"], &n))
				return n
			},
		},
		{
			name: "webpush", rec: func(f *fakes) recorder { return f.web },
			devices: func(f *fakes) (dev, dev, dev, map[string]providertest.DeviceKeys) {
				keys := map[string]providertest.DeviceKeys{}
				mk := func(id string) dev {
					ep, k := f.web.Subscribe(id)
					keys[k.P256dh()] = k
					return dev{AppID: "de.example.tim.web", PushKey: k.P256dh(), Data: map[string]any{"endpoint": ep, "auth": k.AuthString(), "format": "event_id_only"}}
				}
				return mk("ok"), mk("flaky"), mk("gone"), keys
			},
			gone: providertest.Reply{Status: 410},
			open: func(t *testing.T, p providertest.Push, _ providertest.DeviceKeys) push.Notice {
				// The fake already decrypted the RFC 8291 body with the
				// subscriber's private key.
				require.Equal(t, "high", p.Headers["Urgency"])
				require.Equal(t, "512", p.Headers["Content-Length"])
				var n push.Notice
				require.NoError(t, json.Unmarshal(p.Body, &n))
				return n
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakes(t)
			srv, disp := startGateway(t, f)

			ok, flaky, gone, keys := c.devices(f)
			rec := c.rec(f)
			rec.SetScript(func(key string, n int) providertest.Reply {
				switch {
				case key == gone.PushKey:
					return c.gone
				case key == flaky.PushKey && n == 1:
					return providertest.Reply{Status: 503, RetryAfter: "0"}
				case key == flaky.PushKey && n == 2:
					return providertest.Reply{Status: 429}
				}
				return providertest.Reply{Status: 200}
			})

			require.Empty(t, notify(t, srv.URL, "$event1", []dev{ok, flaky, gone}))
			require.Eventually(t, func() bool { return rec.Delivered() == 2 && disp.Depth() == 0 }, 10*time.Second, 5*time.Millisecond)
			require.Empty(t, rec.Errors())
			require.Equal(t, 3, rec.Attempts(flaky.PushKey), "503 and 429 retried")
			require.Equal(t, 1, rec.Attempts(gone.PushKey))

			for _, p := range rec.Pushes() {
				if c.name != "webpush" { // the Web Push fake records the payload it decrypted
					require.NotContains(t, string(p.Body), "event1", "ids travel encrypted")
				}
				if p.Status/100 != 2 {
					continue
				}
				n := c.open(t, p, keys[p.PushKey])
				require.Equal(t, push.Notice{EventID: "$event1", RoomID: "!room:tim.example.org", Prio: "high", Counts: push.Counts{Unread: 3}}, n)
			}

			// The homeserver learns about the dead pushkey on the next notify.
			require.Equal(t, []string{gone.PushKey}, notify(t, srv.URL, "$event2", []dev{ok, gone}))
			require.Eventually(t, func() bool { return rec.Delivered() == 3 && disp.Depth() == 0 }, 10*time.Second, 5*time.Millisecond)
			require.Equal(t, 1, rec.Attempts(gone.PushKey), "a rejected pushkey is not pushed again")
		})
	}
}

func TestFCMTokenExchangeHappensOnce(t *testing.T) {
	f := newFakes(t)
	srv, _ := startGateway(t, f)
	k := providertest.NewDeviceKeys()
	for i := range 5 {
		notify(t, srv.URL, fmt.Sprintf("$e%d", i), []dev{{AppID: "de.example.tim.android", PushKey: "tok", Data: k.Data()}})
	}
	require.Eventually(t, func() bool { return f.fcm.Delivered() == 5 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, f.fcm.Grants(), "the OAuth2 token is reused")
}

// SIGTERM with a full queue loses nothing: the process spools what it has
// not sent, the next start reloads and delivers it.
func TestSIGTERMSpoolsAndRestartDelivers(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tim-pushgw")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	f := newFakes(t)
	dir := t.TempDir()
	k := providertest.NewDeviceKeys()
	const n = 30

	logs := &syncbuf.Buffer{} // both runs; JSON lines
	start := func(maxDelay string) (*exec.Cmd, string) {
		cfgPath := f.writeConfig(t, dir, maxDelay)
		cmd := exec.Command(bin, "-config", cfgPath)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = logs
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err, logs.String())
		addr := strings.TrimSpace(strings.TrimPrefix(line, "tim-pushgw listening on "))
		return cmd, "http://" + addr
	}

	cmd, url := start("10s")
	for i := range n {
		notify(t, url, fmt.Sprintf("$e%d", i), []dev{{AppID: "de.example.tim.ios", PushKey: fmt.Sprintf("tok%d", i), Data: k.Data()}})
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	spooled := 0
	if raw, err := os.ReadFile(filepath.Join(dir, "spool.jsonl")); err == nil {
		spooled = strings.Count(string(raw), "\n")
		require.NotContains(t, string(raw), "vertraulich")
		require.NotContains(t, string(raw), "Dr. Alice")
	}
	require.Equal(t, n, spooled+f.apns.Delivered(), "every accepted notification is spooled or delivered")
	require.Positive(t, spooled, "a 10 s random delay leaves work in the queue")

	cmd, _ = start("0s")
	require.Eventually(t, func() bool { return f.apns.Delivered() == n }, 20*time.Second, 10*time.Millisecond)
	require.NoFileExists(t, filepath.Join(dir, "spool.jsonl"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	require.NoFileExists(t, filepath.Join(dir, "spool.jsonl"), "nothing left to spool")
	// JSON logs, and nothing in them names a pushkey, event or room.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Greater(t, len(lines), n, "debug logs of every send")
	for _, l := range lines {
		require.True(t, json.Valid([]byte(l)), l)
		for _, secret := range []string{"tok1", "$e1", "!room", "tim.example.org"} {
			require.NotContains(t, l, secret)
		}
	}
	seen := map[string]bool{}
	for _, p := range f.apns.Pushes() {
		seen[p.PushKey] = true
	}
	require.Len(t, seen, n)
}

// startGateway runs the gateway in-process against the fakes, without the random delay; it is shut down
// when the test ends.
func startGateway(t *testing.T, f *fakes) (*httptest.Server, *delivery.Dispatcher) {
	t.Helper()
	cfg, err := config.Load(f.writeConfig(t, t.TempDir(), "0s"))
	require.NoError(t, err)
	svc, err := service.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		svc.Dispatcher.Shutdown(context.Background())
	})
	return srv, svc.Dispatcher
}
