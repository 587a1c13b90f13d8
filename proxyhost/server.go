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
	// MaxBodyBytes bounds a request body the host buffers for the filter
	// (Envoy's per-stream buffer limit); default 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds how long a request may wait for the filter
	// (callouts included); default 30 s.
	RequestTimeout time.Duration
	// Client performs callouts and upstream requests; default a client
	// with a 30 s timeout.
	Client *http.Client
	// Log receives the filter's log lines; nil discards them.
	Log func(level int, msg string)
	// Options are passed to the Runtime (clock, stdout, cache).
	Options Options
}

// Server is an HTTP reverse proxy that runs every request through the
// proxy-wasm filter, like Envoy's HTTP connection manager with one Wasm
// filter in front of a router. It runs one VM; requests are serialised
// through it (the filter's work per request is microseconds).
type Server struct {
	cfg    ServerConfig
	rt     *Runtime
	vm     *VM
	mu     sync.Mutex
	stop   chan struct{}
	wg     sync.WaitGroup
	client *http.Client
}

// NewServer compiles the module, starts the plugin and its tick loop.
func NewServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("proxyhost: no upstream")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
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
	rt, err := NewRuntime(ctx, cfg.Wasm, opts)
	if err != nil {
		return nil, err
	}
	vm, err := rt.NewVM(ctx)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	s := &Server{cfg: cfg, rt: rt, vm: vm, stop: make(chan struct{}), client: client}
	vm.OnCallout = s.dispatch
	s.mu.Lock()
	ok, err := vm.StartPlugin(cfg.PluginConfig)
	s.mu.Unlock()
	if err != nil || !ok {
		rt.Close(ctx)
		if err == nil {
			err = fmt.Errorf("plugin refused its configuration: %s", strings.Join(vm.Logs(LogCritical), "; "))
		}
		return nil, err
	}
	s.wg.Add(1)
	go s.tickLoop()
	return s, nil
}

// Runtime exposes metrics and shared data of the server's VM.
func (s *Server) Runtime() *Runtime { return s.rt }

// Close stops the tick loop and releases the VM.
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt.Close(context.Background())
}

func (s *Server) tickLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		p := s.vm.TickPeriod()
		s.mu.Unlock()
		if p <= 0 {
			p = 100 * time.Millisecond
		}
		select {
		case <-s.stop:
			return
		case <-time.After(p):
		}
		s.mu.Lock()
		if s.vm.TickPeriod() > 0 {
			if err := s.vm.Tick(); err != nil && s.cfg.Log != nil {
				s.cfg.Log(LogError, "proxyhost: tick: "+err.Error())
			}
		}
		s.mu.Unlock()
	}
}

// dispatch performs a callout with net/http; it runs with s.mu held (inside
// the guest's proxy_http_call), so the call itself runs in a goroutine.
func (s *Server) dispatch(c *Callout) {
	base := s.cfg.Clusters[c.Cluster]
	go func() {
		var hs [][2]string
		var body []byte
		if base != nil {
			hs, body = s.call(base, c)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-s.stop:
			return
		default:
		}
		if err := s.vm.RespondCallout(c.ID, hs, body); err != nil && s.cfg.Log != nil {
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

// ServeHTTP runs the request through the filter and forwards it when the
// filter lets it through.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, `{"errcode":"M_TOO_LARGE","error":"Request body too large"}`)
		return
	}
	headers := requestHeaders(r)
	wake := make(chan struct{}, 1)

	s.mu.Lock()
	st, err := s.vm.NewStream()
	if err != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"filter failure"}`)
		return
	}
	st.wake = wake
	action, err := s.vm.RequestHeaders(st, headers, len(body) == 0)
	if err == nil && st.Local == nil && len(body) > 0 {
		action, err = s.vm.RequestBody(st, body, true)
	}
	done := func() {
		s.mu.Lock()
		st.wake = nil
		_ = s.vm.Done(st)
		s.mu.Unlock()
	}
	if err != nil {
		s.mu.Unlock()
		done()
		writeJSON(w, http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"filter failure"}`)
		return
	}
	for st.Local == nil && action == ActionPause && !st.Resumed {
		s.mu.Unlock()
		select {
		case <-wake:
		case <-time.After(s.cfg.RequestTimeout):
			done()
			writeJSON(w, http.StatusGatewayTimeout, `{"errcode":"M_UNKNOWN","error":"filter timed out"}`)
			return
		case <-r.Context().Done():
			done()
			return
		}
		s.mu.Lock()
	}
	local := st.Local
	reqHeaders := st.ReqHeaders
	reqBody := st.ReqBody
	if len(body) > 0 && reqBody == nil {
		reqBody = body
	}
	s.mu.Unlock()
	defer done()
	if local != nil {
		for _, h := range local.Headers {
			w.Header().Add(h[0], h[1])
		}
		w.WriteHeader(local.Status)
		w.Write(local.Body)
		return
	}
	s.forward(w, r, reqHeaders, reqBody)
}

func (s *Server) forward(w http.ResponseWriter, r *http.Request, headers [][2]string, body []byte) {
	u := *s.cfg.Upstream
	path := lookup(headers, ":path")
	ref, err := url.Parse(path)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"errcode":"M_UNRECOGNIZED","error":"bad path"}`)
		return
	}
	target := u.ResolveReference(ref)
	req, err := http.NewRequestWithContext(r.Context(), lookup(headers, ":method"), target.String(), bytes.NewReader(body))
	if err != nil {
		writeJSON(w, http.StatusBadGateway, `{"errcode":"M_UNKNOWN","error":"bad upstream request"}`)
		return
	}
	for _, h := range headers {
		if !strings.HasPrefix(h[0], ":") && h[0] != "host" && h[0] != "content-length" {
			req.Header.Add(h[0], h[1])
		}
	}
	req.Host = lookup(headers, ":authority")
	req.Header.Set("X-Forwarded-For", clientIP(r))
	resp, err := s.client.Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, `{"errcode":"M_UNKNOWN","error":"upstream unreachable"}`)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
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
