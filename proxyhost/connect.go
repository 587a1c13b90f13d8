package proxyhost

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxTunnels bounds the CONNECT tunnels open at once; more are refused with 503.
const maxTunnels = 256

// ConnectTunnel stands in for envoy/envoy.yaml's egress listener: a CONNECT request (HTTP/1.0 as
// Synapse sends it, HTTP/1.1 as Go's transport in Dendrite does) is answered with 200, the tunnel's
// TLS is terminated with a certificate that ca issues for the name the client asks for (Envoy:
// the internal listener "egress_inspect"), and every request inside the tunnel goes to next - the
// egress proxy that runs the filter - as an https request. Requests that are not CONNECT
// (plain-HTTP forward proxying, absolute form) go to next unchanged.
//
// Unlike Envoy, a request inside a tunnel must name the host the tunnel was opened to (421
// otherwise): what the filter checks (Host, X-Matrix destination) and where the forwarder sends
// the request cannot then differ from the tunnel's target.
func ConnectTunnel(next http.Handler, ca *LocalCA) http.Handler {
	return &tunnel{next: next, ca: ca, slots: make(chan struct{}, maxTunnels)}
}

type tunnel struct {
	next  http.Handler
	ca    *LocalCA
	slots chan struct{}
}

func (t *tunnel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		t.next.ServeHTTP(w, r)
		return
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil || host == "" {
		writeJSON(w, http.StatusBadRequest, `{"errcode":"M_UNRECOGNIZED","error":"CONNECT needs host:port"}`)
		return
	}
	select {
	case t.slots <- struct{}{}:
	default:
		writeJSON(w, http.StatusServiceUnavailable, `{"errcode":"M_UNAVAILABLE","error":"too many tunnels"}`)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		<-t.slots
		writeJSON(w, http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"cannot open a tunnel"}`)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		<-t.slots
		return
	}
	// The status line answers in the client's protocol version (RFC 9110 9.3.6).
	if _, err := conn.Write([]byte(r.Proto + " 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		<-t.slots
		return
	}
	go func() {
		defer func() { <-t.slots }()
		t.serve(&bufferedConn{Conn: conn, r: buf.Reader}, strings.ToLower(host))
	}()
}

// serve terminates TLS on conn and serves HTTP/1.1 on it until the client closes the tunnel.
func (t *tunnel) serve(conn net.Conn, target string) {
	tconn := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = target
			}
			return t.ca.Leaf(name)
		},
	})
	ln := newOneConnListener(tconn)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if host := hostOnly(r.Host); host != target {
				writeJSON(w, http.StatusMisdirectedRequest, `{"errcode":"M_UNRECOGNIZED","error":"request does not name the tunnel's host"}`)
				return
			}
			t.next.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				ln.Close()
			}
		},
	}
	_ = srv.Serve(ln)
}

// hostOnly lower-cases a Host header and drops its port.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// bufferedConn reads first what the HTTP server had already buffered after the CONNECT request
// (a client may send its TLS ClientHello without waiting for the 200).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// oneConnListener hands out one connection, then blocks until it is closed.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	taken  bool
	mu     sync.Mutex
}

func newOneConnListener(c net.Conn) *oneConnListener {
	return &oneConnListener{conn: c, closed: make(chan struct{})}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.taken {
		l.taken = true
		l.mu.Unlock()
		return l.conn, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
