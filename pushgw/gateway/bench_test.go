package gateway_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/metrics"
	"github.com/timfd/fachdienst/pushgw/providertest"
)

func BenchmarkNotify(b *testing.B) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := &keySender{}
	d := delivery.New([]delivery.App{{ID: "de.example.tim", Sender: s}}, delivery.Options{Capacity: 10_000_000, MaxDelay: 10 * time.Second, Metrics: m})
	h := gateway.New(d, m, reg, nil).Handler()
	k := providertest.NewDeviceKeys()
	body := `{"notification":{"event_id":"$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","room_id":"!abcdefghijklmnop:tim.example.org","type":"m.room.encrypted","sender":"@alice:tim.example.org","prio":"high","counts":{"unread":2},"devices":[{"app_id":"de.example.tim","pushkey":"pk","pushkey_ts":1700000000,"data":{"format":"event_id_only","p256dh":"` + k.P256dh() + `","auth":"` + k.AuthString() + `"}}]}}`
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", gateway.NotifyPath, strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
