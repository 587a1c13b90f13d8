package push

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// HTTPClient returns the client providers use: HTTP/2 when the server offers
// it, a bounded timeout, and optionally a private set of trusted roots (for
// test providers and private relays; nil means the system roots).
func HTTPClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// CertPool parses PEM certificates into a pool; empty input yields nil (the
// system roots).
func CertPool(pem []byte) (*x509.CertPool, error) {
	if len(pem) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// ClassifyStatus maps the HTTP status classes every provider shares:
// 429 and 5xx are temporary.
func ClassifyStatus(code int) (Outcome, bool) {
	switch {
	case code >= 200 && code < 300:
		return Sent, true
	case code == http.StatusTooManyRequests || code >= 500:
		return Retry, true
	}
	return Drop, false
}

// StatusReason names an HTTP status for logs and metrics labels.
func StatusReason(code int) string { return "status_" + strconv.Itoa(code) }
