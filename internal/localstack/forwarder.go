package localstack

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Routes maps server names to the addresses the egress forwarder sends them to, in place of DNS:
// the own name to the own homeserver, other organisations' names to their server-server proxies on
// loopback. Safe for concurrent use.
type Routes struct {
	mu sync.RWMutex
	m  map[string]*url.URL
}

// NewRoutes returns an empty table.
func NewRoutes() *Routes { return &Routes{m: map[string]*url.URL{}} }

// Set routes serverName (without port) to target.
func (r *Routes) Set(serverName string, target *url.URL) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[strings.ToLower(serverName)] = target
}

func (r *Routes) get(name string) *url.URL {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m[name]
}

// NewForwarder sends each request on to the host it names, as Envoy's dynamic forward proxy
// cluster does behind the egress filter: to the address routes gives the name (whatever port the
// request named), else to https://host.
func NewForwarder(routes *Routes) http.Handler {
	transport := &http.Transport{
		Proxy:                 nil, // never chain to an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(r *httputil.ProxyRequest) {
			host := strings.ToLower(r.In.Host)
			name := host
			if h, _, err := net.SplitHostPort(host); err == nil {
				name = h
			}
			target := &url.URL{Scheme: "https", Host: host}
			if u := routes.get(name); u != nil {
				target = u
			}
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"The other party could not be reached"}`))
		},
	}
}
