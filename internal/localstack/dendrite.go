package localstack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// DendriteVersion is the homeserver the local run and the end-to-end tests run (tools/dendrite).
const DendriteVersion = "v0.13.8"

// ErrNoDendrite means the Dendrite binaries are not built (make dendrite).
var ErrNoDendrite = errors.New("dendrite is not built: run `make dendrite` (scripts/build-dendrite.sh)")

// DendriteBinDir finds the directory holding the dendrite and generate-keys binaries:
// $TIM_DENDRITE_BIN, else build/bin of the repository that contains the working directory.
func DendriteBinDir() (string, error) {
	dir := os.Getenv("TIM_DENDRITE_BIN")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "build", "bin")
	}
	for _, b := range []string{"dendrite", "generate-keys"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return dir, fmt.Errorf("%w (%s missing in %s)", ErrNoDendrite, b, dir)
		}
	}
	return dir, nil
}

// MissingDendrite says why the Dendrite binaries cannot be used (nil when they can). Tests skip on
// it, or fail when CI=true.
func MissingDendrite() error {
	_, err := DendriteBinDir()
	return err
}

// BuildDendrite runs scripts/build-dendrite.sh (which reports its progress on out) and returns
// the directory of the binaries. It builds only what is missing.
func BuildDendrite(ctx context.Context, out io.Writer) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "build-dendrite.sh"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building dendrite: %w", err)
	}
	return DendriteBinDir()
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "dendrite", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localstack: not inside the repository (no tools/dendrite/go.mod above the working directory)")
		}
		dir = parent
	}
}

// DendriteConfig configures one Dendrite process.
type DendriteConfig struct {
	// BinDir holds the binaries (DendriteBinDir).
	BinDir string
	// Dir is its data folder: configuration, signing key, SQLite databases, media, log.
	Dir string
	// ServerName is its Matrix server name.
	ServerName string
	// Host and Port are the address it listens on (Port 0: a free port).
	Host string
	Port int
	// HTTPSProxy is the egress proxy its federation client sends every request through (CONNECT).
	HTTPSProxy string
	// TrustPEM is the CA its federation client trusts (the egress proxy's local CA); it trusts no
	// other CA, so it cannot reach anything but through the egress proxy's tunnels.
	TrustPEM []byte
	// WellKnownClient is the base URL announced at /.well-known/matrix/client.
	WellKnownClient string
	// WellKnownServer is the host:port announced at /.well-known/matrix/server (server-name
	// delegation); "" announces ServerName:8448.
	WellKnownServer string
	// Log receives its output; nil writes it to Dir/dendrite.log.
	Log io.Writer
}

// Dendrite is a running Dendrite homeserver (client-server and server-server API on one port).
type Dendrite struct {
	ServerName string
	URL        string // http://host:port
	// ASToken is the as_token of the control plane's application service (account data reads).
	ASToken      string
	sharedSecret string
	cmd          *exec.Cmd
	done         chan error
	logFile      *os.File
}

// dendriteYAML is the configuration (schema version 2 of Dendrite v0.13) for a local homeserver:
// SQLite, no open registration (accounts come through the shared secret), no rate limits (the
// tests send bursts), federation only through HTTPS_PROXY with the local CA trusted.
var dendriteYAML = template.Must(template.New("dendrite").Parse(`version: 2
global:
  server_name: {{.ServerName}}
  private_key: {{.Dir}}/matrix_key.pem
  key_validity_period: 168h0m0s
  well_known_server_name: "{{.WellKnownServer}}"
  well_known_client_name: "{{.WellKnownClient}}"
  disable_federation: false
  presence: {enable_inbound: false, enable_outbound: false}
  trusted_third_party_id_servers: []
  jetstream:
    storage_path: {{.Dir}}/jetstream
    topic_prefix: Dendrite
  metrics: {enabled: false}
  dns_cache: {enabled: false}
  server_notices: {enabled: false}
  report_stats: {enabled: false}
app_service_api:
  disable_tls_validation: false
  config_files: [{{.Dir}}/tim-control-appservice.yaml]
client_api:
  registration_disabled: true
  registration_shared_secret: "{{.SharedSecret}}"
  guests_disabled: true
  rate_limiting: {enabled: false}
federation_api:
  database: {connection_string: "file:{{.Dir}}/federationapi.db"}
  send_max_retries: 3
  disable_tls_validation: false
  disable_http_keepalives: false
  key_perspectives: []
key_server:
  database: {connection_string: "file:{{.Dir}}/keyserver.db"}
media_api:
  database: {connection_string: "file:{{.Dir}}/mediaapi.db"}
  base_path: {{.Dir}}/media
mscs:
  database: {connection_string: "file:{{.Dir}}/mscs.db"}
relay_api:
  database: {connection_string: "file:{{.Dir}}/relayapi.db"}
room_server:
  database: {connection_string: "file:{{.Dir}}/roomserver.db"}
sync_api:
  database: {connection_string: "file:{{.Dir}}/syncapi.db"}
  search: {enabled: false}
user_api:
  bcrypt_cost: 4
  account_database: {connection_string: "file:{{.Dir}}/userapi.db"}
logging:
- {type: std, level: warn}
`))

// appserviceYAML registers the control plane as an application service whose (non-exclusive)
// users namespace covers every local user, so that it may read their account data (?user_id=).
var appserviceYAML = template.Must(template.New("appservice").Parse(`id: tim-control
url: ""
as_token: "{{.ASToken}}"
hs_token: "{{.HSToken}}"
sender_localpart: _tim-control
rate_limited: false
namespaces:
  users:
  - {exclusive: false, regex: '{{.UserRegex}}'}
`))

// dendriteConfig renders Dendrite's configuration and the control plane's application service
// registration.
func dendriteConfig(c DendriteConfig, sharedSecret, asToken, hsToken string) (cfg, as []byte) {
	var cb, ab bytes.Buffer
	wellKnown := c.WellKnownServer
	if wellKnown == "" {
		wellKnown = c.ServerName + ":8448"
	}
	// Both templates are fixed and their data plain strings: Execute cannot fail.
	_ = dendriteYAML.Execute(&cb, map[string]string{
		"ServerName": c.ServerName, "Dir": c.Dir, "WellKnownClient": c.WellKnownClient, "SharedSecret": sharedSecret,
		"WellKnownServer": wellKnown,
	})
	_ = appserviceYAML.Execute(&ab, map[string]string{
		"ASToken": asToken, "HSToken": hsToken, "UserRegex": "@.*:" + regexp.QuoteMeta(c.ServerName),
	})
	return cb.Bytes(), ab.Bytes()
}

// dendriteFiles writes the configuration, application service and signing key into c.Dir, once:
// a data folder of an earlier run keeps its secrets, key and databases.
func dendriteFiles(ctx context.Context, c DendriteConfig) (sharedSecret, asToken string, err error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return "", "", err
	}
	secrets := filepath.Join(c.Dir, "secrets.json")
	var s struct{ SharedSecret, ASToken, HSToken string }
	if b, err := os.ReadFile(secrets); err == nil && json.Unmarshal(b, &s) == nil && s.SharedSecret != "" {
	} else {
		s.SharedSecret, s.ASToken, s.HSToken = randomHex(24), randomHex(24), randomHex(24)
		b, _ := json.Marshal(s)
		if err := os.WriteFile(secrets, b, 0o600); err != nil {
			return "", "", err
		}
	}
	cfg, as := dendriteConfig(c, s.SharedSecret, s.ASToken, s.HSToken)
	for name, b := range map[string][]byte{
		"dendrite.yaml": cfg, "tim-control-appservice.yaml": as, "federation-ca.pem": c.TrustPEM,
	} {
		if err := os.WriteFile(filepath.Join(c.Dir, name), b, 0o600); err != nil {
			return "", "", err
		}
	}
	key := filepath.Join(c.Dir, "matrix_key.pem")
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		out, err := exec.CommandContext(ctx, filepath.Join(c.BinDir, "generate-keys"), "--private-key", key).CombinedOutput()
		if err != nil {
			return "", "", fmt.Errorf("generate-keys: %v: %s", err, out)
		}
	}
	return s.SharedSecret, s.ASToken, nil
}

// StartDendrite writes the configuration and starts Dendrite; it returns once the homeserver
// answers on its client-server API. The process is stopped with Stop.
func StartDendrite(ctx context.Context, c DendriteConfig) (_ *Dendrite, err error) {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Dir, err = filepath.Abs(c.Dir); err != nil {
		return nil, err
	}
	secret, asToken, err := dendriteFiles(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("dendrite: %w", err)
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	if c.Port == 0 {
		// A free port: Dendrite binds it itself, so it is taken and released here first.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		addr = ln.Addr().String()
		ln.Close()
	}

	d := &Dendrite{ServerName: c.ServerName, URL: "http://" + addr, ASToken: asToken, sharedSecret: secret, done: make(chan error, 1)}
	out := c.Log
	if out == nil {
		if d.logFile, err = os.OpenFile(filepath.Join(c.Dir, "dendrite.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, err
		}
		out = d.logFile
	}
	d.cmd = exec.Command(filepath.Join(c.BinDir, "dendrite"),
		"--config", filepath.Join(c.Dir, "dendrite.yaml"), "--http-bind-address", addr)
	d.cmd.Dir = c.Dir
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.Env = append(scrubbedEnv(),
		"HTTPS_PROXY="+c.HTTPSProxy, "https_proxy="+c.HTTPSProxy, "NO_PROXY=", "no_proxy=",
		"SSL_CERT_FILE="+filepath.Join(c.Dir, "federation-ca.pem"), "SSL_CERT_DIR="+filepath.Join(c.Dir, "no-other-cas"))
	// Dendrite dies with the process that started it, also when that one crashes.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		d.closeLog()
		return nil, fmt.Errorf("dendrite: %w", err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	deadline := time.Now().Add(90 * time.Second)
	for status(d.URL+"/_matrix/client/versions", nil) != http.StatusOK {
		select {
		case err := <-d.done:
			d.done <- err
			return nil, fmt.Errorf("dendrite exited at start (%v); see %s", err, filepath.Join(c.Dir, "dendrite.log"))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.New("dendrite did not answer within 90 s")
		}
	}
	return d, nil
}

// scrubbedEnv is the environment without proxy and trust settings, which StartDendrite sets.
func scrubbedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Register creates an account through the shared-secret registration API and returns its MXID;
// an account that exists already (a data folder of an earlier run) is kept as it is.
func (d *Dendrite) Register(ctx context.Context, localpart, password string, admin bool) (string, error) {
	mxid := "@" + localpart + ":" + d.ServerName
	u := d.URL + "/_synapse/admin/v1/register"
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	if err := getJSON(ctx, u, &nonce); err != nil || nonce.Nonce == "" {
		return "", fmt.Errorf("dendrite: registration nonce: %v", err)
	}
	role := "notadmin"
	if admin {
		role = "admin"
	}
	mac := hmac.New(sha1.New, []byte(d.sharedSecret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00" + role))
	body, _ := json.Marshal(map[string]any{
		"nonce": nonce.Nonce, "username": localpart, "password": password, "admin": admin, "mac": hex.EncodeToString(mac.Sum(nil)),
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := probeClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("dendrite: register: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK || strings.Contains(string(rb), "M_USER_IN_USE") {
		return mxid, nil
	}
	return "", fmt.Errorf("dendrite: register %s: %d %s", localpart, resp.StatusCode, rb)
}

// Stop ends the process (SIGTERM, after 10 s SIGKILL) and waits for it.
func (d *Dendrite) Stop() error {
	defer d.closeLog()
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
	return nil
}

func (d *Dendrite) closeLog() {
	if d.logFile != nil {
		d.logFile.Close()
		d.logFile = nil
	}
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("status " + strconv.Itoa(resp.StatusCode))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(v)
}
