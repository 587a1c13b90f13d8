// Command control measures the control plane on loopback: it starts tim-control in-process (SQLite,
// the VZD stand-in from standin/vzd, the homeserver stand-in) and drives the internal API with a
// bounded keep-alive load generator.
//
//	go run ./bench/control -out build/bench/control.json
//
// Figures: requests/s of GET /internal/v1/federation-list with the current version (204) and with
// version=0 (200, the whole JWS), and the latency of POST /internal/v1/invite-permission with a
// warm localization cache (stage 3) and a release-list hit (stage 2). Targets on 2 cores: at least
// 10 000 req/s on the 204 path, invite p99 at most 5 ms.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/timfd/fachdienst/bench/internal/proc"
	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/server"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/standin/homeserver"
	standinvzd "github.com/timfd/fachdienst/standin/vzd"
)

const secret = "bench-internal-secret-0123456789"

type result struct {
	Name     string  `json:"name"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms,omitempty"` // latency runs only
	P99ms    float64 `json:"p99_ms,omitempty"`
	Maxms    float64 `json:"max_ms,omitempty"`
	// CPUSeconds is the process's CPU time (client and server together) during the run; on a shared
	// machine RequestsPerCPUSecond is the figure that does not depend on how much CPU others took.
	CPUSeconds           float64 `json:"cpu_seconds"`
	RequestsPerCPUSecond float64 `json:"requests_per_cpu_second"`
}

func cpuSeconds() float64 { return proc.CPUTime().Seconds() }

func withCPU(r result, cpu0 float64) result {
	r.CPUSeconds = cpuSeconds() - cpu0
	if r.CPUSeconds > 0 {
		r.RequestsPerCPUSecond = float64(r.Requests) / r.CPUSeconds
	}
	return r
}

type report struct {
	GoVersion  string   `json:"go_version"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	NumCPU     int      `json:"num_cpu"`
	Workers    int      `json:"workers"`
	LatWorkers int      `json:"latency_workers"`
	LoadAvg    string   `json:"load_average_at_start"`
	Domains    int      `json:"federation_domains"`
	Results    []result `json:"results"`
	Targets    struct {
		FederationList204RPS float64 `json:"federation_list_204_min_rps"`
		InviteP99ms          float64 `json:"invite_p99_max_ms"`
	} `json:"targets"`
	Met bool `json:"targets_met"`
}

func main() {
	out := flag.String("out", "", "write the figures as JSON to this file")
	duration := flag.Duration("duration", 3*time.Second, "duration of each request-rate run")
	workers := flag.Int("workers", 16, "concurrent client goroutines of the request-rate runs")
	latWorkers := flag.Int("latency-workers", 4, "concurrent client goroutines of the latency runs")
	invites := flag.Int("invites", 20000, "invite-permission requests per latency run")
	domains := flag.Int("domains", 1000, "domains in the stand-in federation list")
	flag.Parse()
	if err := run(*out, *duration, *workers, *latWorkers, *invites, *domains); err != nil {
		fmt.Fprintln(os.Stderr, "bench/control:", err)
		os.Exit(1)
	}
}

func run(out string, duration time.Duration, workers, latWorkers, invites, nDomains int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ds := make([]standinvzd.Domain, 0, nDomains)
	for i := range nDomains {
		ds = append(ds, standinvzd.Domain{Domain: fmt.Sprintf("d%d.example.de", i), TelematikID: fmt.Sprintf("1-%d", i)})
	}
	v, err := standinvzd.New(standinvzd.WithDomains(ds...),
		standinvzd.WithLocation("@doc:d1.example.de", "pract"),
		standinvzd.WithLocation("@nurse:d2.example.de", "pract"))
	if err != nil {
		return err
	}
	vsrv := httptest.NewServer(v)
	defer vsrv.Close()
	hsrv := httptest.NewServer(homeserver.New("d2.example.de", ""))
	defer hsrv.Close()

	dir, err := os.MkdirTemp("", "tim-bench-control")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Storage.SQLitePath = filepath.Join(dir, "tim.db")
	cfg.Homeserver.URL = hsrv.URL
	cfg.VZD.BaseURL, cfg.VZD.ClientID, cfg.VZD.ClientSecret, cfg.VZD.SigAlg = vsrv.URL, "tim-fd", "secret", "ES256"
	cfg.Internal.SharedSecrets = []string{secret}
	cfg.Log.Level = "error"
	srv, err := server.New(ctx, cfg, server.Deps{
		Logger:         slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		TrustAnchorPEM: v.TrustAnchorPEM(),
	})
	if err != nil {
		return err
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	in, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, pub, in) }()
	base := "http://" + in.Addr().String()

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2, IdleConnTimeout: time.Minute}, Timeout: 10 * time.Second}
	// The federation job fetches at start; wait until the list is served.
	var version string
	for deadline := time.Now().Add(30 * time.Second); ; {
		status, hdr, _ := call(client, http.MethodGet, base+"/internal/v1/federation-list?version=0", nil)
		if status == http.StatusOK {
			version = hdr.Get("X-Federation-Version")
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the control plane never served a federation list")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Release list entry for the stage-2 run.
	if err := srv.Store.CreateContact(ctx, store.Contact{Owner: "@nurse:d2.example.de", Contact: "@friend:d3.example.de", DisplayName: "Friend", Start: time.Now().Add(-time.Hour)}, 10); err != nil {
		return err
	}

	rep := report{GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), Workers: workers, LatWorkers: latWorkers, Domains: nDomains}
	// The machine may be shared: the load average tells how far the figures are from an idle machine.
	rep.LoadAvg = proc.LoadAvg()
	rep.Targets.FederationList204RPS, rep.Targets.InviteP99ms = 10000, 5

	rep.Results = append(rep.Results,
		rate(client, workers, duration, "federation-list 204 (current version)", http.StatusNoContent, http.MethodGet, base+"/internal/v1/federation-list?version="+version, nil),
		rate(client, workers, duration, "federation-list 200 (version=0)", http.StatusOK, http.MethodGet, base+"/internal/v1/federation-list?version=0", nil),
	)
	stage3 := []byte(`{"inviter":"@doc:d1.example.de","invitee":"@nurse:d2.example.de"}`)
	stage2 := []byte(`{"inviter":"@friend:d3.example.de","invitee":"@nurse:d2.example.de"}`)
	for _, b := range [][]byte{stage3, stage2} { // warm the localization cache and check the answers
		status, _, body := call(client, http.MethodPost, base+"/internal/v1/invite-permission", b)
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"allow":true`)) {
			return fmt.Errorf("invite warm-up: %d %s", status, body)
		}
	}
	rep.Results = append(rep.Results,
		latency(client, latWorkers, invites, "invite-permission stage 3 (warm cache)", base+"/internal/v1/invite-permission", stage3),
		latency(client, latWorkers, invites, "invite-permission stage 2 (release list)", base+"/internal/v1/invite-permission", stage2),
	)
	cancel()
	if err := <-served; err != nil {
		return err
	}

	rep.Met = rep.Results[0].RPS >= rep.Targets.FederationList204RPS && rep.Results[0].Errors == 0 &&
		rep.Results[2].P99ms <= rep.Targets.InviteP99ms && rep.Results[3].P99ms <= rep.Targets.InviteP99ms &&
		rep.Results[2].Errors == 0 && rep.Results[3].Errors == 0
	fmt.Printf("control plane on loopback: %s, GOMAXPROCS=%d, %d rate workers, %d latency workers, %d federation domains, load average %s\n",
		rep.GoVersion, rep.GOMAXPROCS, workers, latWorkers, nDomains, rep.LoadAvg)
	for _, r := range rep.Results {
		fmt.Printf("  %-42s %7d req %3d err %7.0f req/s %7.0f req/cpu-s", r.Name, r.Requests, r.Errors, r.RPS, r.RequestsPerCPUSecond)
		if r.P50ms > 0 {
			fmt.Printf("  p50 %6.3f ms  p99 %7.3f ms  max %7.3f ms", r.P50ms, r.P99ms, r.Maxms)
		}
		fmt.Println()
	}
	fmt.Printf("  targets (204 >= %.0f req/s, invite p99 <= %.0f ms) met: %v\n", rep.Targets.FederationList204RPS, rep.Targets.InviteP99ms, rep.Met)
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		raw, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(out, append(raw, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func call(c *http.Client, method, url string, body []byte) (int, http.Header, []byte) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, resp.Header, raw
}

// rate runs workers request loops for d and reports the rate of answers with status want.
func rate(c *http.Client, workers int, d time.Duration, name string, want int, method, url string, body []byte) result {
	var ok, bad atomic.Int64
	cpu0 := cpuSeconds()
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if status, _, _ := call(c, method, url, body); status == want {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return withCPU(result{Name: name, Requests: ok.Load() + bad.Load(), Errors: bad.Load(), Seconds: secs, RPS: float64(ok.Load()) / secs}, cpu0)
}

// latency sends n requests from workers loops and reports the distribution of their latencies.
func latency(c *http.Client, workers, n int, name, url string, body []byte) result {
	lat := make([]time.Duration, n)
	var next, bad atomic.Int64
	cpu0 := cpuSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				status, _, resp := call(c, http.MethodPost, url, body)
				lat[i] = time.Since(t0)
				if status != http.StatusOK || !bytes.Contains(resp, []byte(`"allow":true`)) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return withCPU(result{Name: name, Requests: int64(n), Errors: bad.Load(), Seconds: secs, RPS: float64(n) / secs,
		P50ms: ms(lat[n/2]), P99ms: ms(lat[n*99/100]), Maxms: ms(lat[n-1])}, cpu0)
}
