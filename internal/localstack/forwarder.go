package localstack

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Forwarder is the egress proxy's upstream: it sends each request on to the host it names, as
// Envoy's dynamic forward proxy does behind the egress filter. The local homeserver's own domain
// goes to the homeserver stand-in (so the egress path can be tried on one machine); any other
// host is reached at https://host.
func Forwarder(ownDomain string, homeserver *url.URL) http.Handler {
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
			if name == ownDomain {
				target = homeserver
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
