package proxyhost

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// dialTunnel opens a CONNECT tunnel to target through the proxy at addr with the given request
// line protocol, checks the 200 and returns the TLS connection inside (verified against ca).
// early sends the ClientHello without waiting for the 200, as some clients do.
func dialTunnel(t *testing.T, addr, target, proto string, ca *LocalCA, sni string) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("CONNECT %s %s\r\n", target, proto)
	if proto == "HTTP/1.1" {
		req += "Host: " + target + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := proto + " 200 "; !strings.HasPrefix(status, want) {
		t.Fatalf("CONNECT answered %q, want %q…", status, want)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: ca.Pool(), ServerName: sni})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS inside the tunnel: %v", err)
	}
	return tc, bufio.NewReader(tc)
}

func TestConnectTunnel(t *testing.T) {
	ca, err := LoadOrCreateLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// next records what reaches the egress proxy.
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		fmt.Fprintf(w, "%s %s %s %s", scheme, r.Method, r.Host, r.URL.RequestURI())
	})
	srv := httptest.NewServer(ConnectTunnel(next, ca))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	cases := []struct {
		name, proto, target, sni, host string
		status                         int
		want                           string
	}{
		{"HTTP/1.0 CONNECT (Synapse)", "HTTP/1.0", "b.localhost:8448", "b.localhost", "b.localhost:8448", 200, "https GET b.localhost:8448 /_matrix/federation/v1/version"},
		{"HTTP/1.1 CONNECT (Dendrite)", "HTTP/1.1", "b.localhost:443", "b.localhost", "b.localhost", 200, "https GET b.localhost /_matrix/federation/v1/version"},
		{"inner Host names another server", "HTTP/1.1", "b.localhost:8448", "b.localhost", "evil.example", 421, "tunnel's host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc, br := dialTunnel(t, addr, c.target, c.proto, ca, c.sni)
			// Two requests on one tunnel: the connection is kept.
			for i := 0; i < 2; i++ {
				fmt.Fprintf(tc, "GET /_matrix/federation/v1/version HTTP/1.1\r\nHost: %s\r\n\r\n", c.host)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
					t.Fatalf("request %d: %d %q, want %d %q", i, resp.StatusCode, body, c.status, c.want)
				}
			}
		})
	}

	t.Run("certificate names the requested server", func(t *testing.T) {
		tc, _ := dialTunnel(t, addr, "c.localhost:8448", "HTTP/1.1", ca, "c.localhost")
		if got := tc.ConnectionState().PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "c.localhost" {
			t.Fatalf("leaf names %v", got)
		}
	})
	t.Run("plain forward-proxy request passes unchanged", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/_matrix/federation/v1/version", nil)
		req.Host = "b.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "http GET b.localhost /_matrix/federation/v1/version" {
			t.Fatalf("got %q", body)
		}
	})
	t.Run("CONNECT without a port", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "CONNECT b.localhost HTTP/1.1\r\nHost: b.localhost\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestLocalCAPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CertPEM()) != string(b.CertPEM()) {
		t.Fatal("a second start made a new CA: clients that trust the first would fail")
	}
}
