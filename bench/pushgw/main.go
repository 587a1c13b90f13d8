// Command pushgw measures the push gateway on loopback: how many notify
// requests per second it accepts and at what latency (a bounded, closed-loop
// load generator with a fixed number of connections), and how fast the queue
// delivers to the local fake providers with the random delay set to zero.
//
//	go run ./bench/pushgw -out build/bench/pushgw.json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/timfd/fachdienst/bench/internal/proc"
	"github.com/timfd/fachdienst/pushgw/apns"
	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/fcm"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/metrics"
	"github.com/timfd/fachdienst/pushgw/providertest"
	"github.com/timfd/fachdienst/pushgw/push"
	"github.com/timfd/fachdienst/pushgw/webpush"
)

// maxSamples bounds the latency record (the load generator must not grow
// without limit either).
const maxSamples = 2_000_000

type acceptResult struct {
	Connections int            `json:"connections"`
	DurationS   float64        `json:"duration_s"`
	Requests    int64          `json:"requests"`
	Accepted    int64          `json:"accepted_200"`
	Statuses    map[string]int `json:"statuses"`
	PerSecond   float64        `json:"accepted_per_s"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	TargetRPS   float64        `json:"target_per_s"`
	TargetP99ms float64        `json:"target_p99_ms"`
	MeetsTarget bool           `json:"meets_target"`
	// CPU time of the whole process (generator included) per request, and
	// the rate GOMAXPROCS fully available cores would sustain at that cost:
	// a figure that does not depend on what else runs on the machine.
	CPUusPerRequest float64 `json:"cpu_us_per_request"`
	CPUBoundPerS    float64 `json:"cpu_bound_per_s"`
}

type deliveryResult struct {
	Notifications int     `json:"notifications"`
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"delivered_per_s"`
}

type report struct {
	GOMAXPROCS int                       `json:"gomaxprocs"`
	NumCPU     int                       `json:"num_cpu"`
	GoVersion  string                    `json:"go_version"`
	Note       string                    `json:"note"`
	LoadAvg    string                    `json:"load_avg_at_start"`
	Accept     acceptResult              `json:"accept"`
	Delivery   map[string]deliveryResult `json:"delivery"`
}

func main() {
	out := flag.String("out", "", "write the figures as JSON here")
	dur := flag.Duration("duration", 5*time.Second, "length of the accept run")
	conns := flag.Int("conns", 8, "concurrent connections of the load generator")
	n := flag.Int("deliver", 3000, "notifications per provider in the delivery run")
	flag.Parse()

	r := report{
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		Note:     "load generator, gateway and fake providers share the same CPUs",
		Delivery: map[string]deliveryResult{},
	}
	r.LoadAvg = proc.LoadAvg()
	r.Accept = benchAccept(*dur, *conns)
	fmt.Printf("accept: %d conns, %.0f notify/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, statuses %v\n",
		r.Accept.Connections, r.Accept.PerSecond, r.Accept.P50ms, r.Accept.P99ms, r.Accept.MaxMs, r.Accept.Statuses)
	fmt.Printf("accept: %.0f µs CPU per request (generator included) -> %.0f/s on %d free cores; load average at start %s\n",
		r.Accept.CPUusPerRequest, r.Accept.CPUBoundPerS, r.GOMAXPROCS, r.LoadAvg)
	for _, p := range []string{"apns", "fcm", "webpush"} {
		d := benchDelivery(p, *n)
		r.Delivery[p] = d
		fmt.Printf("delivery %-8s %d in %.2f s: %.0f/s\n", p, d.Notifications, d.Seconds, d.PerSecond)
	}
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			log.Fatal(err)
		}
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// countingSender stands in for a provider in the accept run; the 10 s delay
// keeps nearly all work queued, as in production.
type countingSender struct{ n atomic.Int64 }

func (s *countingSender) Check(push.Device) error { return nil }
func (s *countingSender) Send(context.Context, push.Device, push.Notice) push.Result {
	s.n.Add(1)
	return push.Result{Outcome: push.Sent}
}

func benchAccept(dur time.Duration, conns int) acceptResult {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	disp := delivery.New([]delivery.App{{ID: "de.example.tim", Sender: &countingSender{}}},
		delivery.Options{Capacity: 1_000_000, MaxDelay: 10 * time.Second, Metrics: m})
	defer disp.Shutdown(context.Background())
	srv := httptest.NewServer(gateway.New(disp, m, reg, nil).Handler())
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	url := srv.URL + gateway.NotifyPath
	keys := providertest.NewDeviceKeys()
	var (
		mu       sync.Mutex
		samples  = make([]time.Duration, 0, 1<<16)
		statuses = map[string]int{}
		total    atomic.Int64
		wg       sync.WaitGroup
	)
	// Bodies are built beforehand so that the generator spends its CPU on
	// HTTP, not on JSON.
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i] = notifyBody(fmt.Sprintf("$ev%d", i), fmt.Sprintf("pk%d", i%64), keys)
	}
	cpu0 := proc.CPUTime()
	deadline := time.Now().Add(dur)
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			localStatus := map[string]int{}
			for i := 0; time.Now().Before(deadline); i++ {
				body := bodies[(c*7919+i)%len(bodies)]
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					localStatus["error"]++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local = append(local, time.Since(t0))
				localStatus[fmt.Sprint(resp.StatusCode)]++
				total.Add(1)
			}
			mu.Lock()
			if room := maxSamples - len(samples); room > 0 {
				samples = append(samples, local[:min(room, len(local))]...)
			}
			for k, v := range localStatus {
				statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpuPerReq := (proc.CPUTime() - cpu0).Seconds() / float64(max(total.Load(), 1))
	slices.Sort(samples)
	q := func(p float64) float64 {
		if len(samples) == 0 {
			return 0
		}
		return float64(samples[min(len(samples)-1, int(p*float64(len(samples))))].Microseconds()) / 1000
	}
	res := acceptResult{
		Connections: conns, DurationS: elapsed, Requests: total.Load(), Accepted: int64(statuses["200"]),
		Statuses: statuses, PerSecond: float64(statuses["200"]) / elapsed,
		P50ms: q(0.50), P99ms: q(0.99), TargetRPS: 5000, TargetP99ms: 10,
		CPUusPerRequest: cpuPerReq * 1e6,
		CPUBoundPerS:    float64(runtime.GOMAXPROCS(0)) / cpuPerReq,
	}
	if len(samples) > 0 {
		res.MaxMs = float64(samples[len(samples)-1].Microseconds()) / 1000
	}
	res.MeetsTarget = res.PerSecond >= res.TargetRPS && res.P99ms <= res.TargetP99ms
	return res
}

// notifyBody is a full Matrix notification as Synapse sends it.
func notifyBody(eventID, pushKey string, keys providertest.DeviceKeys) []byte {
	b, _ := json.Marshal(map[string]any{"notification": map[string]any{
		"event_id": eventID, "room_id": "!abcdefghijklmnop:tim.example.org", "type": "m.room.encrypted",
		"sender": "@alice:tim.example.org", "prio": "high",
		"counts": map[string]int{"unread": 2},
		"devices": []map[string]any{{"app_id": "de.example.tim", "pushkey": pushKey, "pushkey_ts": 1700000000,
			"data": map[string]any{"format": "event_id_only", "p256dh": keys.P256dh(), "auth": keys.AuthString()}}},
	}})
	return b
}

type delivered interface{ Delivered() int }

func benchDelivery(provider string, n int) deliveryResult {
	var (
		sender push.Sender
		fake   delivered
		devs   = make([]push.Device, n)
		err    error
	)
	switch provider {
	case "apns":
		f := providertest.NewAPNs("de.example.tim")
		defer f.Server.Close()
		roots, _ := push.CertPool(providertest.CAPEM(f.Server))
		sender, err = apns.New(apns.Config{KeyP8: f.KeyP8, KeyID: f.KeyID, TeamID: f.TeamID, Topic: f.Topic, Endpoint: f.Server.URL, Client: push.HTTPClient(roots, 0)})
		fake = f
		k := providertest.NewDeviceKeys()
		for i := range devs {
			devs[i] = k.Device("app", fmt.Sprintf("tok%d", i))
		}
	case "fcm":
		f := providertest.NewFCM("tim-bench")
		defer f.Server.Close()
		roots, _ := push.CertPool(providertest.CAPEM(f.Server))
		sender, err = fcm.New(fcm.Config{ServiceAccountJSON: f.ServiceAccountJSON, Endpoint: f.Server.URL, Client: push.HTTPClient(roots, 0)})
		fake = f
		k := providertest.NewDeviceKeys()
		for i := range devs {
			devs[i] = k.Device("app", fmt.Sprintf("tok%d", i))
		}
	case "webpush":
		f := providertest.NewWebPush()
		defer f.Server.Close()
		sender, err = webpush.New(webpush.Config{VAPIDPublicKey: f.VAPIDPublicKey, VAPIDPrivateKey: f.VAPIDPrivateKey,
			Subscriber: "mailto:bench@example.org", AllowedEndpoints: []string{f.Server.URL}})
		fake = f
		ep, k := f.Subscribe("bench")
		for i := range devs {
			devs[i] = k.WebDevice("app", ep)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	disp := delivery.New([]delivery.App{{ID: "app", Sender: sender, Concurrency: 32}}, delivery.Options{Capacity: n, MaxDelay: -1})
	defer disp.Shutdown(context.Background())
	jobs := make([]delivery.Job, n)
	for i := range jobs {
		jobs[i] = delivery.Job{AppID: "app", Device: devs[i], Notice: push.Notice{EventID: fmt.Sprintf("$e%d", i), RoomID: "!r:tim.example.org", Counts: push.Counts{Unread: 1}}}
	}
	start := time.Now()
	if err := disp.Submit(jobs); err != nil {
		log.Fatal(err)
	}
	for disp.Depth() > 0 {
		time.Sleep(time.Millisecond)
	}
	secs := time.Since(start).Seconds()
	if got := fake.Delivered(); got != n {
		log.Fatalf("%s: delivered %d of %d", provider, got, n)
	}
	return deliveryResult{Notifications: n, Seconds: secs, PerSecond: float64(n) / secs}
}
