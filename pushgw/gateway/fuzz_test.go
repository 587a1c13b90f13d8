package gateway_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/metrics"
)

// Any body yields a Matrix answer with a known status, never a crash.
func FuzzNotify(f *testing.F) {
	for _, seed := range []string{
		`{"notification":{"devices":[` + device + `]}}`,
		`{"notification":{"event_id":"$e","room_id":"!r:x","counts":{"unread":1},"devices":[{"app_id":"x","pushkey":"y"}]}}`,
		`{"notification":{"devices":[null]}}`, `[]`, `{`, `null`, `{"notification":{"prio":"low","devices":[]}}`,
	} {
		f.Add(seed)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	d := delivery.New([]delivery.App{{ID: "de.example.tim", Sender: &recSender{}}}, delivery.Options{Capacity: 1 << 20, MaxDelay: 10 * time.Second, Metrics: m})
	h := gateway.New(d, m, reg, nil).Handler()
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", gateway.NotifyPath, strings.NewReader(body)))
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body.String())
		}
		switch w.Code {
		case 200:
			if _, ok := out["rejected"].([]any); !ok {
				t.Fatalf("200 without rejected array: %s", w.Body.String())
			}
		case 400:
			if out["errcode"] != "M_NOT_JSON" && out["errcode"] != "M_BAD_JSON" {
				t.Fatalf("400 with %v", out["errcode"])
			}
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
