package proxyhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Wasm is the compiled filter; PluginConfig its plugin configuration.
	Wasm         []byte
	PluginConfig []byte
	// Upstream receives the requests the filter lets through.
	Upstream *url.URL
	// Clusters maps the cluster names the filter calls out to (e.g. its
	// control-plane cluster) to base URLs.
	Clusters map[string]*url.URL
	// MaxBodyBytes is Envoy's per-stream buffer limit (the listener's
	// per_connection_buffer_limit_bytes): a body the filter buffers beyond
	// it gets Envoy's 413; default 1 MiB.
	MaxBodyBytes int64
	// Workers is the number of worker threads, each with its own VM (Envoy
	// --concurrency); default 2.
	Workers int
	// RequestTimeout bounds how long a request may wait for the filter
	// (callouts included); default 30 s.
	RequestTimeout time.Duration
	// Client performs callouts and upstream requests; default a client
	// with a 30 s timeout.
	Client *http.Client
	// Log receives the filter's log lines; nil discards them.
	Log func(level int, msg string)
	// Options are passed to the Runtime (clock, stdout, cache, plugin
	// options). MaxBodyBytes, when set, is its BufferLimit.
	Options Options
}

// Server is an HTTP reverse proxy that runs every request through the
// proxy-wasm filter, like Envoy's HTTP connection manager with one Wasm
// filter in front of a router: the plugin is started once in a canary VM
// that is then discarded, and once in each worker's VM; a request runs on
// one worker, whose VM serves one callback at a time; the upstream request
// starts when the filter lets the headers through, and its body follows as
// the filter lets it through (see stream.go for the rules).
type Server struct {
	cfg     ServerConfig
	rt      *Runtime
	workers []*worker
	next    atomic.Uint32
	stop    chan struct{}
	wg      sync.WaitGroup
	client  *http.Client
}

// worker is one Envoy worker thread: its VM and the lock that serialises it.
type worker struct {
	s  *Server
	mu sync.Mutex
	vm *VM
}

// NewServer compiles the module, runs the canary plugin start, then starts
// the plugin in every worker's VM with its tick loop.
func NewServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("proxyhost: no upstream")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultBufferLimit
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	opts := cfg.Options
	if opts.Log == nil {
		opts.Log = cfg.Log
	}
	opts.BufferLimit = int(cfg.MaxBodyBytes)
	rt, err := NewRuntime(ctx, cfg.Wasm, opts)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, rt: rt, stop: make(chan struct{}), client: client}
	if ok, logs, err := rt.Canary(ctx, cfg.PluginConfig); err != nil || !ok {
		rt.Close(ctx)
		if err == nil {
			err = fmt.Errorf("plugin refused its configuration: %s", strings.Join(logs, "; "))
		}
		return nil, err
	}
	for i := 0; i < cfg.Workers; i++ {
		vm, err := rt.NewVM(ctx)
		if err != nil {
			rt.Close(ctx)
			return nil, err
		}
		w := &worker{s: s, vm: vm}
		vm.OnCallout = w.dispatch
		w.mu.Lock()
		ok, err := vm.StartPlugin(cfg.PluginConfig)
		w.mu.Unlock()
		if err != nil || !ok {
			rt.Close(ctx)
			if err == nil {
				err = fmt.Errorf("plugin refused its configuration: %s", strings.Join(vm.Logs(LogCritical), "; "))
			}
			return nil, err
		}
		s.workers = append(s.workers, w)
	}
	for _, w := range s.workers {
		s.wg.Add(1)
		go w.tickLoop()
	}
	return s, nil
}

// Workers is the number of worker VMs requests are spread over.
func (s *Server) Workers() int { return len(s.workers) }

// Runtime exposes metrics and shared data of the server's VMs.
func (s *Server) Runtime() *Runtime { return s.rt }

// Close stops the tick loops and releases the VMs.
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	for _, w := range s.workers {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	return s.rt.Close(context.Background())
}

// tickLoop runs the worker's timer: in Envoy one per root context per VM
// (cpp-host ContextBase::setTimerPeriod).
func (w *worker) tickLoop() {
	s := w.s
	defer s.wg.Done()
	for {
		w.mu.Lock()
		p := w.vm.TickPeriod()
		w.mu.Unlock()
		if p <= 0 {
			p = 100 * time.Millisecond
		}
		select {
		case <-s.stop:
			return
		case <-time.After(p):
		}
		w.mu.Lock()
		if w.vm.TickPeriod() > 0 {
			if err := w.vm.Tick(); err != nil && s.cfg.Log != nil {
				s.cfg.Log(LogError, "proxyhost: tick: "+err.Error())
			}
		}
		w.mu.Unlock()
	}
}

// dispatch performs a callout with net/http; it runs with s.mu held (inside
// the guest's proxy_http_call), so the call itself runs in a goroutine.
func (w *worker) dispatch(c *Callout) {
	s := w.s
	base := s.cfg.Clusters[c.Cluster]
	go func() {
		var hs [][2]string
		var body []byte
		if base != nil {
			hs, body = s.call(base, c)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		select {
		case <-s.stop:
			return
		default:
		}
		if err := w.vm.RespondCallout(c.ID, hs, body); err != nil && s.cfg.Log != nil {
			s.cfg.Log(LogError, "proxyhost: callout response: "+err.Error())
		}
	}()
}

// call returns the response headers (":status" first) and body, or nil
// headers when the call failed, as Envoy reports a failed callout.
func (s *Server) call(base *url.URL, c *Callout) ([][2]string, []byte) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	method := c.Header(":method")
	ref, err := url.Parse(c.Header(":path"))
	if err != nil {
		return nil, nil
	}
	u := base.ResolveReference(ref)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(c.Body))
	if err != nil {
		return nil, nil
	}
	for _, h := range c.Headers {
		if !strings.HasPrefix(h[0], ":") {
			req.Header.Add(h[0], h[1])
		}
	}
	if a := c.Header(":authority"); a != "" {
		req.Host = a
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 128<<20))
	if err != nil {
		return nil, nil
	}
	hs := [][2]string{{":status", fmt.Sprint(resp.StatusCode)}}
	for k, vs := range resp.Header {
		for _, v := range vs {
			hs = append(hs, [2]string{strings.ToLower(k), v})
		}
	}
	return hs, body
}

func requestHeaders(r *http.Request) [][2]string {
	hs := [][2]string{
		{":method", r.Method},
		{":path", r.URL.RequestURI()},
		{":authority", r.Host},
		{":scheme", "http"},
	}
	if r.TLS != nil {
		hs[3][1] = "https"
	}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		for _, v := range vs {
			hs = append(hs, [2]string{lk, v})
		}
	}
	return hs
}

func clientIP(r *http.Request) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return r.RemoteAddr[:i]
	}
	return r.RemoteAddr
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
