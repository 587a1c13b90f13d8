package proxyhost_test

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/timfd/fachdienst/proxyhost"
)

var (
	probeOnce sync.Once
	probeWasm []byte
	probeErr  error
)

// probe is the module whose steps the request headers dictate
// (proxyhost/internal/probe).
func probe(t *testing.T) []byte {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "proxyhost-probe")
		if err != nil {
			probeErr = err
			return
		}
		var p string
		if p, probeErr = proxyhost.BuildModule("", "./proxyhost/internal/probe", dir); probeErr == nil {
			probeWasm, probeErr = os.ReadFile(p)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probeWasm
}

func probeVM(t *testing.T, opts proxyhost.Options) (*proxyhost.Runtime, *proxyhost.VM) {
	t.Helper()
	ctx := context.Background()
	rt, err := proxyhost.NewRuntime(ctx, probe(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	vm, err := rt.NewVM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := vm.StartPlugin(nil); err != nil || !ok {
		t.Fatalf("start: %v %v", ok, err)
	}
	return rt, vm
}

func probeHeaders(kv ...string) [][2]string {
	h := [][2]string{{":method", "POST"}, {":path", "/p"}, {":authority", "a"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, [2]string{kv[i], kv[i+1]})
	}
	return h
}

// answer answers every pending callout of the streams (cluster "c").
func answer(t *testing.T, vm *proxyhost.VM) {
	t.Helper()
	for _, c := range vm.PendingCallouts() {
		if c.Cluster == "c" {
			if err := vm.RespondCallout(c.ID, [][2]string{{":status", "200"}}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestEnvoyStreamBehaviour pins, case by case, what Envoy with
// proxy-wasm-cpp-host does with a filter's statuses; each case names the
// source it follows.
func TestEnvoyStreamBehaviour(t *testing.T) {
	type want struct {
		headers   proxyhost.HeadersStatus
		bodyCalls int
		lastBody  string // what the last body callback saw
		upHeaders bool
		upBody    string
		upEnd     bool
		reset     bool
		local     int
		byHost    bool
	}
	cases := []struct {
		name    string
		opts    proxyhost.Options
		headers [][2]string
		chunks  []string // the last one ends the stream
		answer  bool     // answer the callouts after the body
		// holdsBody: the upstream must get no body byte before the end.
		holdsBody bool
		want      want
	}{
		{
			name:    "cpp-host context.cc convertVmCallResultToFilterHeadersStatus: a headers pause is StopAllIterationAndWatermark, the body callback never comes",
			headers: probeHeaders("x-headers", "pause"),
			chunks:  []string{"ab", "c"},
			want:    want{headers: proxyhost.HeadersStopAllIterationAndWatermark},
		},
		{
			name:    "Envoy PluginConfig.allow_on_headers_stop_iteration: a headers pause stays StopIteration, body callbacks come",
			opts:    proxyhost.Options{AllowOnHeadersStopIteration: true},
			headers: probeHeaders("x-headers", "pause"),
			chunks:  []string{"ab", "c"},
			want:    want{headers: proxyhost.HeadersStopIteration, bodyCalls: 2, lastBody: "c", upHeaders: true, upBody: "abc", upEnd: true},
		},
		{
			name:    "filter_manager.cc iterate_from_current_filter_: after a StopAll is resumed the held body comes in one callback",
			headers: probeHeaders("x-headers", "callout"),
			chunks:  []string{"ab", "c"},
			answer:  true,
			want:    want{headers: proxyhost.HeadersStopAllIterationAndWatermark, bodyCalls: 1, lastBody: "abc", upHeaders: true, upBody: "abc", upEnd: true},
		},
		{
			name:      "wasm context.cc decodeData: a buffering filter sees all data so far, the upstream gets the headers and nothing of the body until the end",
			headers:   probeHeaders("x-body", "buffer"),
			chunks:    []string{"a", "b", "c"},
			holdsBody: true,
			want:      want{bodyCalls: 3, lastBody: "abc", upHeaders: true, upBody: "abc", upEnd: true},
		},
		{
			name:    "wasm context.cc decodeData: a continuing filter sees each chunk once, the chunks pass",
			headers: probeHeaders("x-body", "continue"),
			chunks:  []string{"a", "b"},
			want:    want{bodyCalls: 2, lastBody: "b", upHeaders: true, upBody: "ab", upEnd: true},
		},
		{
			name:    "exports.cc send_local_response and context.cc sendLocalResponse: a refusal in the body callback resets the upstream request, which got no body",
			headers: probeHeaders("x-body", "local"),
			chunks:  []string{"a", "b"},
			want:    want{bodyCalls: 2, lastBody: "ab", upHeaders: true, reset: true, local: 403},
		},
		{
			name:    "a refusal in the headers callback: no body callback, nothing upstream",
			headers: probeHeaders("x-headers", "local"),
			chunks:  []string{"a"},
			want:    want{headers: proxyhost.HeadersStopAllIterationAndWatermark, local: 403},
		},
		{
			name:    "context.cc continueStream: a callout answered after the body resumes the request with its buffered body",
			headers: probeHeaders("x-body", "callout"),
			chunks:  []string{"a", "b"},
			answer:  true,
			want:    want{bodyCalls: 2, lastBody: "ab", upHeaders: true, upBody: "ab", upEnd: true},
		},
		{
			name:    "filter_manager.cc buffer limit: a buffered body over the limit gets Envoy's 413, not the filter's answer",
			opts:    proxyhost.Options{BufferLimit: 8},
			headers: probeHeaders("x-body", "buffer"),
			chunks:  []string{"12345", "67890", "x"},
			want:    want{bodyCalls: 1, lastBody: "12345", upHeaders: true, reset: true, local: 413, byHost: true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, vm := probeVM(t, c.opts)
			s, err := vm.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := vm.RequestHeaders(s, c.headers, len(c.chunks) == 0); err != nil {
				t.Fatal(err)
			}
			for i, ch := range c.chunks {
				if _, err := vm.RequestBody(s, []byte(ch), i == len(c.chunks)-1); err != nil {
					t.Fatal(err)
				}
				if i < len(c.chunks)-1 && c.holdsBody && len(s.Upstream.Body) > 0 {
					t.Fatalf("upstream got %q before the end", s.Upstream.Body)
				}
			}
			if c.answer {
				answer(t, vm)
			}
			got := want{headers: s.Headers, bodyCalls: s.BodyCalls, upHeaders: s.Upstream.Headers, upBody: string(s.Upstream.Body),
				upEnd: s.Upstream.End, reset: s.Upstream.Reset}
			if s.BodyCalls > 0 {
				got.lastBody = string(s.ReqBody)
			}
			if s.Local != nil {
				got.local, got.byHost = s.Local.Status, s.Local.ByHost
			}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
			if err := vm.Done(s); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMallocRestricted follows proxy-wasm-cpp-host wasm.h
// WasmBase::allocMemory: while the host runs the guest's malloc, only
// proxy_log, fd_write, clock_time_get and poll_oneoff may be called; any
// other host call traps the VM.
func TestMallocRestricted(t *testing.T) {
	for _, c := range []struct {
		call string
		trap bool
	}{
		{"", false},
		{"proxy_log", false},
		{"clock_time_get", false},
		{"proxy_get_property", true},
		{"random_get", true},
	} {
		t.Run(c.call, func(t *testing.T) {
			_, vm := probeVM(t, proxyhost.Options{})
			s, err := vm.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := vm.RequestHeaders(s, probeHeaders("x-malloc", c.call), false); err != nil {
				t.Fatal(err)
			}
			// The body callback reads the body: the host allocates for it.
			_, err = vm.RequestBody(s, []byte("x"), true)
			if trapped := err != nil && strings.Contains(err.Error(), "restricted_callback"); trapped != c.trap {
				t.Errorf("trap = %v (%v), want %v", trapped, err, c.trap)
			}
		})
	}
}

func sharedCount(rt *proxyhost.Runtime, key string) uint64 {
	b, ok := rt.SharedData(key)
	if !ok || len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// TestVMsPerWorker follows cpp-host wasm.cc (canary, getOrCreateThreadLocal
// Wasm) and context.cc setTimerPeriod: the plugin starts once in a canary VM
// that is discarded, then once per worker VM; shared data is common to the
// VMs, each VM has its own timer, the canary's callouts are never answered.
func TestVMsPerWorker(t *testing.T) {
	var startCalls atomic.Int32
	start := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { startCalls.Add(1) }))
	defer start.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	su, _ := url.Parse(start.URL)
	uu, _ := url.Parse(up.URL)
	srv, err := proxyhost.NewServer(context.Background(), proxyhost.ServerConfig{
		Wasm: probe(t), Upstream: uu, Workers: 3, Clusters: map[string]*url.URL{"start": su},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if n := sharedCount(srv.Runtime(), "starts"); n != 4 {
		t.Errorf("plugin starts = %d, want 4 (canary + 3 workers)", n)
	}
	if srv.Workers() != 3 {
		t.Errorf("workers = %d", srv.Workers())
	}
	for deadline := time.Now().Add(5 * time.Second); startCalls.Load() < 3 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if n := startCalls.Load(); n != 3 {
		t.Errorf("start callouts sent = %d, want 3 (the canary's is dropped with its VM)", n)
	}

	_, a := probeVM(t, proxyhost.Options{})
	if a.TickPeriod() != time.Second {
		t.Errorf("tick period = %v", a.TickPeriod())
	}
}

// TestServerLikeEnvoy drives the probe through the HTTP server: what the
// upstream receives and what the client gets.
func TestServerLikeEnvoy(t *testing.T) {
	type seen struct {
		requests, wholeBodies int
		body                  string
	}
	var mu sync.Mutex
	var up seen
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		up.requests++
		mu.Unlock()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		mu.Lock()
		up.wholeBodies++
		up.body = string(b)
		mu.Unlock()
		io.WriteString(w, "upstream")
	}))
	defer upstream.Close()
	callouts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer callouts.Close()
	uu, _ := url.Parse(upstream.URL)
	cu, _ := url.Parse(callouts.URL)
	srv, err := proxyhost.NewServer(context.Background(), proxyhost.ServerConfig{
		Wasm: probe(t), Upstream: uu, Clusters: map[string]*url.URL{"c": cu, "start": cu},
		RequestTimeout: 2 * time.Second, MaxBodyBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	front := httptest.NewServer(srv)
	defer front.Close()

	big := strings.Repeat("x", 100<<10)
	for _, c := range []struct {
		name, hdr, val, body string
		status               int
		wholeBodies          int
		upBody               string
	}{
		{"body buffered to the end reaches the upstream whole", "x-body", "buffer", `{"a":1}`, 200, 1, `{"a":1}`},
		{"body passed through chunk by chunk", "x-body", "continue", big, 200, 1, big},
		{"refusal in the body: the client gets it, the upstream no body", "x-body", "local", `{"a":1}`, 403, 0, ""},
		{"headers pause: Envoy never delivers the body, the request hangs", "x-headers", "pause", `{"a":1}`, 504, 0, ""},
		{"headers callout: the body follows the resume", "x-headers", "callout", `{"a":1}`, 200, 1, `{"a":1}`},
		{"body callout: resumed with the buffered body", "x-body", "callout", `{"a":1}`, 200, 1, `{"a":1}`},
		{"buffered body over the buffer limit: Envoy's 413", "x-body", "buffer", big, 413, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			up = seen{}
			mu.Unlock()
			req, _ := http.NewRequest("POST", front.URL+"/p", strings.NewReader(c.body))
			req.Header.Set(c.hdr, c.val)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			got := up
			mu.Unlock()
			if resp.StatusCode != c.status || got.wholeBodies != c.wholeBodies || got.body != c.upBody {
				t.Errorf("status %d, upstream %d whole bodies (%d bytes); want %d, %d (%d bytes)",
					resp.StatusCode, got.wholeBodies, len(got.body), c.status, c.wholeBodies, len(c.upBody))
			}
		})
	}
}

// TestServerReplacesForwardedFor: as the bootstrap's HCMs do, the upstream
// sees the downstream address alone in X-Forwarded-For, whatever the client
// wrote there (the homeserver trusts its leftmost entry).
func TestServerReplacesForwardedFor(t *testing.T) {
	got := make(chan []string, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values("X-Forwarded-For")
	}))
	defer upstream.Close()
	uu, _ := url.Parse(upstream.URL)
	srv, err := proxyhost.NewServer(context.Background(), proxyhost.ServerConfig{Wasm: probe(t), Upstream: uu, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	front := httptest.NewServer(srv)
	defer front.Close()
	req, _ := http.NewRequest("GET", front.URL+"/p", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if xff := <-got; len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For upstream = %q, want only the downstream address", xff)
	}
}
