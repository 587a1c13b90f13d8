package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/e2ee"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/metrics"
	"github.com/timfd/fachdienst/pushgw/push"
)

type recSender struct {
	mu      sync.Mutex
	devices []push.Device
	notices []push.Notice
}

func (s *recSender) Check(d push.Device) error {
	if d.DataString("p256dh") == "" {
		return errors.New("no key")
	}
	return nil
}

func (s *recSender) Send(_ context.Context, d push.Device, n push.Notice) push.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices = append(s.devices, d)
	s.notices = append(s.notices, n)
	if d.PushKey == "gone" {
		return push.Result{Outcome: push.Reject}
	}
	return push.Result{Outcome: push.Sent}
}

func (s *recSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.notices)
}

func newGateway(t *testing.T, capacity int, maxDelay time.Duration) (*httptest.Server, *recSender, *delivery.Dispatcher, *gateway.Gateway) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := &recSender{}
	d := delivery.New([]delivery.App{{ID: "de.example.tim", Sender: s}}, delivery.Options{Capacity: capacity, MaxDelay: maxDelay, Metrics: m})
	g := gateway.New(d, m, reg, nil)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.Close()
		_, _ = d.Shutdown(context.Background())
	})
	return srv, s, d, g
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+gateway.NotifyPath, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

const device = `{"app_id":"de.example.tim","pushkey":"pk1","pushkey_ts":12345,"data":{"format":"event_id_only","p256dh":"K","auth":"A"},"tweaks":{"sound":"bing"}}`

func TestNotifyValidation(t *testing.T) {
	srv, _, _, _ := newGateway(t, 100, -1)
	cases := []struct {
		name, body string
		status     int
		errcode    string
	}{
		{"not json", `{"notification":`, 400, "M_NOT_JSON"},
		{"empty body", ``, 400, "M_NOT_JSON"},
		{"array", `[]`, 400, "M_BAD_JSON"},
		{"no notification", `{}`, 400, "M_BAD_JSON"},
		{"notification null", `{"notification":null}`, 400, "M_BAD_JSON"},
		{"notification not object", `{"notification":"x"}`, 400, "M_BAD_JSON"},
		{"no devices", `{"notification":{"event_id":"$e"}}`, 400, "M_BAD_JSON"},
		{"empty devices", `{"notification":{"devices":[]}}`, 400, "M_BAD_JSON"},
		{"devices not array", `{"notification":{"devices":{}}}`, 400, "M_BAD_JSON"},
		{"device without pushkey", `{"notification":{"devices":[{"app_id":"a"}]}}`, 400, "M_BAD_JSON"},
		{"device without app_id", `{"notification":{"devices":[{"pushkey":"p"}]}}`, 400, "M_BAD_JSON"},
		{"device null", `{"notification":{"devices":[null]}}`, 400, "M_BAD_JSON"},
		{"empty pushkey", `{"notification":{"devices":[{"app_id":"a","pushkey":""}]}}`, 400, "M_BAD_JSON"},
		{"pushkey too long", `{"notification":{"devices":[{"app_id":"a","pushkey":"` + strings.Repeat("k", 513) + `"}]}}`, 400, "M_BAD_JSON"},
		{"pushkey number", `{"notification":{"devices":[{"app_id":"a","pushkey":5}]}}`, 400, "M_BAD_JSON"},
		{"counts wrong type", `{"notification":{"counts":{"unread":"1"},"devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"negative count", `{"notification":{"counts":{"unread":-1},"devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"bad prio", `{"notification":{"prio":"urgent","devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"bad event id", `{"notification":{"event_id":"e1","devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"bad room id", `{"notification":{"room_id":"#alias:x","devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"sender wrong type", `{"notification":{"sender":1,"devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"content not object", `{"notification":{"content":"hi","devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"counts not object", `{"notification":{"counts":[1],"devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"fractional count", `{"notification":{"counts":{"missed_calls":1.5},"devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"pushkey_ts string", `{"notification":{"devices":[{"app_id":"a","pushkey":"p","pushkey_ts":"1"}]}}`, 400, "M_BAD_JSON"},
		{"data not object", `{"notification":{"devices":[{"app_id":"a","pushkey":"p","data":[]}]}}`, 400, "M_BAD_JSON"},
		{"tweaks not object", `{"notification":{"devices":[{"app_id":"a","pushkey":"p","tweaks":1}]}}`, 400, "M_BAD_JSON"},
		{"room_name wrong type", `{"notification":{"room_name":{},"devices":[` + device + `]}}`, 400, "M_BAD_JSON"},
		{"too many devices", `{"notification":{"devices":[` + strings.TrimSuffix(strings.Repeat(device+",", 101), ",") + `]}}`, 400, "M_BAD_JSON"},
		{"too large", `{"notification":{"content":{"body":"` + strings.Repeat("x", 512<<10) + `"},"devices":[` + device + `]}}`, 413, "M_TOO_LARGE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, srv.URL, tc.body)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.errcode, out["errcode"])
		})
	}
}

func TestRoutesAndMethods(t *testing.T) {
	srv, _, _, g := newGateway(t, 100, -1)
	cases := []struct {
		method, path string
		status       int
		errcode      string
	}{
		{"GET", gateway.NotifyPath, 405, "M_UNRECOGNIZED"},
		{"PUT", gateway.NotifyPath, 405, "M_UNRECOGNIZED"},
		{"POST", "/_matrix/push/v2/notify", 404, "M_UNRECOGNIZED"},
		{"GET", "/", 404, "M_UNRECOGNIZED"},
		{"GET", "/healthz", 200, ""},
		{"GET", "/readyz", 200, ""},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, tc.method+" "+tc.path)
		if tc.errcode != "" {
			require.Equal(t, tc.errcode, out["errcode"])
		}
	}
	g.Drain()
	resp, err := http.Get(srv.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
}

// The full Matrix notification goes in; only what a client needs to fetch
// the event comes out to the provider (A_22808).
func TestOnlyFetchDataReachesTheProvider(t *testing.T) {
	srv, s, _, _ := newGateway(t, 100, -1)
	body := `{"notification":{
		"event_id":"$3957tyerfgewrf384","room_id":"!slw48wfj34rtnrf:example.org","type":"m.room.message",
		"sender":"@exampleuser:matrix.org","sender_display_name":"Major Tom","room_name":"Mission Control",
		"room_alias":"#exampleroom:matrix.org","prio":"high",
		"content":{"msgtype":"m.text","body":"I'm floating in a most peculiar way."},
		"counts":{"unread":2,"missed_calls":1},
		"devices":[` + device + `]}}`
	status, out := post(t, srv.URL, body)
	require.Equal(t, 200, status)
	require.Equal(t, []any{}, out["rejected"])
	require.Eventually(t, func() bool { return s.count() == 1 }, 5*time.Second, time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, push.Notice{EventID: "$3957tyerfgewrf384", RoomID: "!slw48wfj34rtnrf:example.org", Prio: "high",
		Counts: push.Counts{Unread: 2, MissedCalls: 1}}, s.notices[0])
	dev, _ := json.Marshal(s.devices[0])
	require.JSONEq(t, `{"app_id":"de.example.tim","pushkey":"pk1","data":{"p256dh":"K","auth":"A"}}`, string(dev))
	all, _ := json.Marshal(s.notices[0])
	for _, secret := range []string{"peculiar", "Major Tom", "Mission Control", "exampleuser", "exampleroom", "m.room.message"} {
		require.NotContains(t, string(all)+string(dev), secret)
	}
}

func TestRejectedPushkeys(t *testing.T) {
	srv, s, d, _ := newGateway(t, 100, -1)
	body := `{"notification":{"event_id":"$e","devices":[
		{"app_id":"unknown.app","pushkey":"u1"},
		{"app_id":"de.example.tim","pushkey":"nokey","data":{}},
		{"app_id":"de.example.tim","pushkey":"gone","data":{"p256dh":"K","auth":"A"}},
		` + device + `]}}`
	status, out := post(t, srv.URL, body)
	require.Equal(t, 200, status)
	require.ElementsMatch(t, []any{"u1", "nokey"}, out["rejected"])
	require.Eventually(t, func() bool { return s.count() == 2 && d.Depth() == 0 }, 5*time.Second, time.Millisecond)
	// The provider refused "gone"; the next notify for it reports it.
	status, out = post(t, srv.URL, body)
	require.Equal(t, 200, status)
	require.ElementsMatch(t, []any{"u1", "nokey", "gone"}, out["rejected"])
	require.Eventually(t, func() bool { return s.count() == 3 }, 5*time.Second, time.Millisecond)
}

func TestOverloadAnswers429(t *testing.T) {
	srv, _, d, _ := newGateway(t, 2, 10*time.Second)
	body := `{"notification":{"devices":[` + device + `]}}`
	for range 2 {
		status, _ := post(t, srv.URL, body)
		require.Equal(t, 200, status)
	}
	status, out := post(t, srv.URL, body)
	require.Equal(t, 429, status)
	require.Equal(t, "M_LIMIT_EXCEEDED", out["errcode"])
	require.Equal(t, 2, d.Depth())

	_, _ = d.Shutdown(context.Background())
	status, out = post(t, srv.URL, body)
	require.Equal(t, 503, status)
	require.Equal(t, "M_UNAVAILABLE", out["errcode"])
}

func TestMetricsEndpoint(t *testing.T) {
	srv, _, _, _ := newGateway(t, 100, -1)
	post(t, srv.URL, `{"notification":{"devices":[`+device+`]}}`)
	post(t, srv.URL, `nope`)
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	text := string(raw)
	for _, want := range []string{
		`tim_pushgw_notify_requests_total{code="200"} 1`,
		`tim_pushgw_notify_requests_total{code="400"} 1`,
		`tim_pushgw_received_total{app="de.example.tim"} 1`,
		`tim_pushgw_queue_depth`,
		`tim_pushgw_delay_seconds_count 1`,
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "pk1")
}

// keySender checks keys as the APNs and FCM senders do.
type keySender struct{ recSender }

func (s *keySender) Check(d push.Device) error {
	return e2ee.CheckDevice(d.DataString("p256dh"), d.DataString("auth"))
}
