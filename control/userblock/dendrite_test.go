package userblock_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// dendriteBinary finds a Dendrite v0.13.8 built as a tool: TIM_DENDRITE_BIN, or build/bin/dendrite of
// the repository.
func dendriteBinary(t *testing.T) string {
	if p := os.Getenv("TIM_DENDRITE_BIN"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "build", "bin", "dendrite")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			t.Skip("no Dendrite binary (build/bin/dendrite or TIM_DENDRITE_BIN); the recorded contracts cover it")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDendrite runs a Dendrite on SQLite in a temporary folder with an admin account and user alice.
func startDendrite(t *testing.T) homeserverUnderTest {
	bin := dendriteBinary(t)
	binDir := filepath.Dir(bin)
	dir := t.TempDir()
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return out
	}
	const server = "hs.test"
	run("generate-keys", "--private-key", "matrix_key.pem")
	cfg := run("generate-config", "-ci", "-dir", dir, "-server", server)
	// Accounts come from shared-secret registration only.
	cfg = bytes.Replace(cfg, []byte("registration_disabled: false"), []byte("registration_disabled: true"), 1)
	if err := os.WriteFile(filepath.Join(dir, "dendrite.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "-config", "dendrite.yaml", "-http-bind-address", "127.0.0.1:"+strconv.Itoa(port))
	cmd.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "dendrite.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited; logf.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "dendrite.log"))
			t.Fatalf("dendrite exited:\n%s", log)
		default:
		}
		resp, err := http.Get(base + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dendrite.log"))
			t.Fatalf("dendrite did not come up:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	register(t, base, "complement", "admin", "admin-password-1", true)
	register(t, base, "complement", "alice", "alice-password-1", false)
	admin := user{t: t, base: base, mxid: "@admin:" + server, pw: "admin-password-1"}
	adminToken, st := admin.login()
	if adminToken == "" {
		t.Fatalf("admin login: %d", st)
	}
	return homeserverUnderTest{kind: "dendrite", base: base, adminToken: adminToken, server: server,
		user: user{t: t, base: base, mxid: "@alice:" + server, pw: "alice-password-1"}}
}

// register creates an account through shared-secret registration (/_synapse/admin/v1/register, which
// Dendrite serves).
func register(t *testing.T, base, secret, name, password string, admin bool) {
	t.Helper()
	resp, err := http.Get(base + "/_synapse/admin/v1/register")
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Nonce string `json:"nonce"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	mac := hmac.New(sha1.New, []byte(secret))
	kind := "notadmin"
	if admin {
		kind = "admin"
	}
	mac.Write([]byte(n.Nonce + "\x00" + name + "\x00" + password + "\x00" + kind))
	body, _ := json.Marshal(map[string]any{"nonce": n.Nonce, "username": name, "password": password, "admin": admin, "mac": hex.EncodeToString(mac.Sum(nil))})
	resp, err = http.Post(base+"/_synapse/admin/v1/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("register %s: %d %v", name, resp.StatusCode, e)
	}
}

// The same scenarios against a real Dendrite v0.13.8.
func TestAgainstRealDendrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a homeserver")
	}
	hs := startDendrite(t)
	t.Run("end sessions", func(t *testing.T) { endSessionsScenario(t, hs) })
	// Ending the sessions replaced alice's password (Dendrite has no other way): a fresh homeserver for the rest.
	hs2 := startDendrite(t)
	t.Run("block", func(t *testing.T) { blockScenario(t, hs2) })
	t.Run("refusals", func(t *testing.T) { refusalsScenario(t, hs2) })
}
