package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/timfd/fachdienst/internal/syncbuf"
	standinvzd "github.com/timfd/fachdienst/standin/vzd"
)

// The test binary doubles as tim-control when this variable is set, so that signals reach a real
// process.
func TestMain(m *testing.M) {
	if os.Getenv("TIM_TEST_RUN_CONTROL_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, logs *syncbuf.Buffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSignals(t *testing.T) {
	v, err := standinvzd.New(standinvzd.WithDomains(standinvzd.Domain{Domain: "home.de", TelematikID: "1-home"}))
	if err != nil {
		t.Fatal(err)
	}
	vsrv := httptest.NewServer(v)
	defer vsrv.Close()
	dir := t.TempDir()
	anchor := filepath.Join(dir, "anchor.pem")
	if err := os.WriteFile(anchor, v.TrustAnchorPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, internal := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`public:
  listen: %q
internal:
  listen: %q
storage:
  sqlite_path: %q
vzd:
  base_url: %q
  client_id: tim-fd
  sig_alg: ES256
federation:
  trust_anchor_file: %q
`, pub, internal, filepath.Join(dir, "tim.db"), vsrv.URL, anchor)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-config", cfgPath)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "TIM_TEST_RUN_CONTROL_MAIN=1",
		"TIM_CONTROL_VZD_CLIENT_SECRET=secret", // secrets from the environment
		"TIM_CONTROL_INTERNAL_SHARED_SECRETS=internal-secret-0123456789")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	waitFor(t, "readiness", &stderr, func() bool {
		resp, err := http.Get("http://" + pub + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	req, _ := http.NewRequest("GET", "http://"+internal+"/internal/v1/federation-list?version=0", nil)
	req.Header.Set("Authorization", "Bearer internal-secret-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("federation list on the internal listener: %d", resp.StatusCode)
	}

	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "policy reload", &stderr, func() bool { return strings.Contains(stderr.String(), `"msg":"policy reloaded"`) })

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Fatalf("no orderly stop in logs:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Fatalf("log line is not JSON: %s", line)
		}
	}
}
