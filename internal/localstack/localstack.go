// Package localstack wires a complete local Fachdienst in one process: the VZD and homeserver
// STAND-INS, the control plane on SQLite, the push gateway, and the compiled messenger-proxy filter
// hosted by proxyhost on three listeners (client-server, server-server, egress). `make run`
// (cmd/tim-local) and the end-to-end tests (e2e/) both start it, so the wiring exists once.
//
// Nothing here is meant for production: the stand-ins keep their state in memory, sign with a
// throw-away test PKI and accept fixed credentials.
package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/server"
	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/standin/homeserver"
	vzdstandin "github.com/timfd/fachdienst/standin/vzd"
)

// Defaults of a local run.
const (
	DefaultHost       = "127.0.0.1"
	DefaultBasePort   = 8480
	DefaultServerName = "tim.localhost"
	// ApprovedClientID is the client id the local policy approves (last comma field of User-Agent).
	ApprovedClientID = "tim-local-client-1.0"
	// UnfederatedDomain is a domain that is in no federation list; the examples use it for denials.
	UnfederatedDomain = "not-federated.example"
	// VZD stand-in OAuth2 client of the control plane.
	vzdClientID     = "tim-fd"
	vzdClientSecret = "local-vzd-secret"
	controlCluster  = "tim_control"
)

// Port offsets from the base port, fixed so that the printed examples stay valid between runs.
const (
	offClient = iota
	offFederation
	offEgress
	offControlPublic
	offControlInternal
	offPush
	offHomeserver
	offVZD
	offForwarder
)

// ExampleDomains are the federated domains (besides the own one) the VZD stand-in lists at start.
var ExampleDomains = []vzdstandin.Domain{
	{Domain: "klinik.example.de", TelematikID: "5-2-local-klinik", TimAnbieter: "Example Provider GmbH"},
	{Domain: "praxis.example.de", TelematikID: "1-2-local-praxis", TimAnbieter: "Example Provider GmbH"},
	{Domain: "kasse.example.de", TelematikID: "8-2-local-kasse", TimAnbieter: "Example Provider GmbH", IsInsurance: true},
}

// Options configure Start.
type Options struct {
	// Host is the address every listener binds to (default 127.0.0.1).
	Host string
	// BasePort is the first of nine consecutive ports; 0 puts every listener on a free port.
	BasePort int
	// DataDir holds the control plane's SQLite database and the push gateway's spool and keys.
	// Its database is recreated at every start: the stand-ins' state (users, test PKI) is in memory.
	DataDir string
	// ServerName is the local homeserver's domain (default tim.localhost).
	ServerName string
	// FilterWasm is the compiled filter; "" takes TIM_FILTER_WASM or builds it into DataDir.
	FilterWasm string
	// Logger receives the control plane's and push gateway's logs; nil discards them.
	Logger *slog.Logger
	// FilterLog receives the filters' log lines (decision lines at warn); nil discards them.
	FilterLog func(role string, level int, msg string)
	// RefetchMinInterval bounds the filters' refetch of the list for a missing domain; 0 keeps the
	// filter's default (10 s).
	RefetchMinInterval time.Duration
	// ControlPollInterval is how often the control plane polls the VZD stand-in (default 30 s, so a
	// domain added there shows up in a local run without waiting an hour).
	ControlPollInterval time.Duration
	// NoPush leaves the push gateway out.
	NoPush bool
}

// Endpoint is one listener of the stack.
type Endpoint struct {
	Name    string
	URL     string
	StandIn bool   // a stand-in for a system outside the provider
	Note    string // what it is for
}

// User is a demo account on the homeserver stand-in.
type User struct {
	MXID     string
	Password string
}

// Stack is a running local Fachdienst.
type Stack struct {
	ServerName string
	// InternalSecret authenticates the proxies at the control plane's internal API.
	InternalSecret string
	Users          []User

	VZD        *vzdstandin.Server
	Homeserver *homeserver.Server
	Control    *server.Server
	Proxies    map[string]*proxyhost.Server // by role: client, federation, egress

	// URLs of the listeners.
	ClientURL, FederationURL, EgressURL     string
	ControlURL, ControlInternalURL, PushURL string
	HomeserverURL, VZDURL, ForwarderURL     string
	Endpoints                               []Endpoint
	PushError                               error // why the push gateway is not running, if it is not
	wasm, trust                             []byte
	opts                                    Options
	httpServers                             []*http.Server
	serveErrs                               chan error
	controlCancel                           context.CancelFunc
	controlDone                             chan error
	controlOnce                             sync.Once
	controlErr                              error
	pushShutdown                            func(context.Context) error
	closeOnce                               sync.Once
}

// Start builds and starts everything, and returns once every part answers: the control plane is
// ready (it holds a federation list) and each proxy has a policy and a verified list. On error,
// whatever was started is stopped again.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.ServerName == "" {
		o.ServerName = DefaultServerName
	}
	if o.DataDir == "" {
		return nil, errors.New("localstack: DataDir is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ControlPollInterval <= 0 {
		o.ControlPollInterval = 30 * time.Second
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("localstack: data dir: %w", err)
	}
	s := &Stack{ServerName: o.ServerName, opts: o, Proxies: map[string]*proxyhost.Server{}, serveErrs: make(chan error, 16)}
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()

	wasmPath := o.FilterWasm
	if wasmPath == "" {
		if wasmPath, err = proxyhost.BuildModule("TIM_FILTER_WASM", "./wasm/cmd/tim-filter", o.DataDir); err != nil {
			return nil, fmt.Errorf("localstack: filter: %w", err)
		}
	}
	if s.wasm, err = os.ReadFile(wasmPath); err != nil {
		return nil, fmt.Errorf("localstack: filter: %w", err)
	}

	listen := func(off int) (net.Listener, string, error) {
		port := 0
		if o.BasePort != 0 {
			port = o.BasePort + off
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, strconv.Itoa(port)))
		if err != nil {
			return nil, "", fmt.Errorf("localstack: listen: %w", err)
		}
		return ln, "http://" + ln.Addr().String(), nil
	}

	// Stand-ins first: the control plane needs both.
	vzdLn, vzdURL, err := listen(offVZD)
	if err != nil {
		return nil, err
	}
	domains := append([]vzdstandin.Domain{{Domain: o.ServerName, TelematikID: "1-2-local-own", TimAnbieter: "Local Provider"}}, ExampleDomains...)
	if s.VZD, err = vzdstandin.New(vzdstandin.WithDomains(domains...), vzdstandin.WithClient(vzdClientID, vzdClientSecret)); err != nil {
		vzdLn.Close()
		return nil, err
	}
	s.trust = s.VZD.TrustAnchorPEM()
	s.serve(vzdLn, s.VZD)
	s.VZDURL = vzdURL

	hsLn, hsURL, err := listen(offHomeserver)
	if err != nil {
		return nil, err
	}
	adminToken := randomHex(16)
	s.Homeserver = homeserver.New(o.ServerName, adminToken)
	s.Users = []User{
		{MXID: s.Homeserver.AddUser("alice", "alice-local-password"), Password: "alice-local-password"},
		{MXID: s.Homeserver.AddUser("bob", "bob-local-password"), Password: "bob-local-password"},
	}
	s.serve(hsLn, s.Homeserver)
	s.HomeserverURL = hsURL

	// Control plane on SQLite, fresh database (see Options.DataDir).
	dbPath := filepath.Join(o.DataDir, "tim-control.db")
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("localstack: %w", err)
		}
	}
	pubLn, pubURL, err := listen(offControlPublic)
	if err != nil {
		return nil, err
	}
	intLn, intURL, err := listen(offControlInternal)
	if err != nil {
		pubLn.Close()
		return nil, err
	}
	s.InternalSecret = randomHex(32)
	cfg := config.Default()
	cfg.Public.Listen, cfg.Internal.Listen = pubLn.Addr().String(), intLn.Addr().String()
	cfg.Public.ShutdownTimeout = 5 * time.Second
	cfg.Internal.SharedSecrets = []string{s.InternalSecret}
	cfg.Storage.SQLitePath = dbPath
	cfg.Homeserver.URL, cfg.Homeserver.AdminToken = hsURL, adminToken
	cfg.VZD.BaseURL, cfg.VZD.ClientID, cfg.VZD.ClientSecret, cfg.VZD.SigAlg = vzdURL, vzdClientID, vzdClientSecret, "BP256R1"
	cfg.Federation.RefreshInterval = o.ControlPollInterval
	cfg.Policy.Variant = "pro"
	cfg.Policy.OwnDomains = []string{o.ServerName}
	cfg.Policy.ApprovedClientIDs = []string{ApprovedClientID}
	cfg.Contacts.ServiceProvider = "Local Fachdienst (stand-ins)"
	if err := cfg.Validate(); err != nil {
		pubLn.Close()
		intLn.Close()
		return nil, err
	}
	if s.Control, err = server.New(ctx, cfg, server.Deps{Logger: o.Logger.With("part", "control"), TrustAnchorPEM: s.trust}); err != nil {
		pubLn.Close()
		intLn.Close()
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.controlCancel, s.controlDone = cancel, make(chan error, 1)
	go func() { s.controlDone <- s.Control.Serve(cctx, pubLn, intLn) }()
	s.ControlURL, s.ControlInternalURL = pubURL, intURL
	if err := waitFor(ctx, 30*time.Second, func() bool { return status(pubURL+"/readyz", nil) == http.StatusOK }); err != nil {
		return nil, fmt.Errorf("localstack: control plane not ready: %w", err)
	}

	// Egress forwarder: what Envoy's dynamic forward proxy cluster does behind the egress filter.
	fwdLn, fwdURL, err := listen(offForwarder)
	if err != nil {
		return nil, err
	}
	hsU, _ := url.Parse(hsURL)
	s.serve(fwdLn, Forwarder(o.ServerName, hsU))
	s.ForwarderURL = fwdURL

	// The three proxies, each running the compiled filter.
	cp, _ := url.Parse(intURL)
	for _, p := range []struct {
		role, upstream string
		off            int
		dst            *string
	}{
		{"client", hsURL, offClient, &s.ClientURL},
		{"federation", hsURL, offFederation, &s.FederationURL},
		{"egress", fwdURL, offEgress, &s.EgressURL},
	} {
		ln, u, err := listen(p.off)
		if err != nil {
			return nil, err
		}
		up, _ := url.Parse(p.upstream)
		px, err := s.NewProxy(ctx, p.role, up, cp)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("localstack: %s proxy: %w", p.role, err)
		}
		s.Proxies[p.role] = px
		s.serve(ln, px)
		*p.dst = u
	}

	if !o.NoPush {
		s.PushError = s.startPush(listen)
	}

	// Ready when each proxy answers with something other than 503 (it then holds policy and list).
	probes := map[string]*http.Request{}
	probes["client"], _ = http.NewRequest("GET", s.ClientURL+"/_matrix/client/versions", nil)
	probes["client"].Header.Set("User-Agent", "tim-local/1.0,"+ApprovedClientID)
	probes["federation"], _ = http.NewRequest("GET", s.FederationURL+"/.well-known/matrix/server", nil)
	probes["egress"], _ = http.NewRequest("GET", s.EgressURL+"/_matrix/federation/v1/version", nil)
	probes["egress"].Host = o.ServerName
	for role, req := range probes {
		// Every worker's VM must be ready: requests go to the workers in turn.
		ready := func() bool {
			for i := 0; i < s.Proxies[role].Workers(); i++ {
				if do(req) != http.StatusOK {
					return false
				}
			}
			return true
		}
		if err := waitFor(ctx, 30*time.Second, ready); err != nil {
			return nil, fmt.Errorf("localstack: %s proxy not ready: %w", role, err)
		}
	}

	s.Endpoints = []Endpoint{
		{"client-server proxy", s.ClientURL, false, "tim-filter (role client) -> homeserver stand-in"},
		{"server-server proxy", s.FederationURL, false, "tim-filter (role federation) -> homeserver stand-in"},
		{"egress proxy", s.EgressURL, false, "tim-filter (role egress) -> requested host (HTTP forward proxy)"},
		{"control plane", s.ControlURL, false, "contact management /tim-contact-mgmt/, /readyz, /metrics"},
		{"control plane internal", s.ControlInternalURL, false, "/internal/v1/* for the proxies (shared secret)"},
	}
	if s.PushURL != "" {
		s.Endpoints = append(s.Endpoints, Endpoint{"push gateway", s.PushURL, false, "POST /_matrix/push/v1/notify (Web Push app " + pushAppID + ")"})
	}
	s.Endpoints = append(s.Endpoints,
		Endpoint{"homeserver", s.HomeserverURL, true, "Matrix homeserver stand-in for " + o.ServerName + " (in memory)"},
		Endpoint{"VZD-FHIR-Directory", s.VZDURL, true, "VZD stand-in, signs BP256R1/ES256 lists with a test CA"},
		Endpoint{"egress forwarder", s.ForwarderURL, false, "behind the egress proxy; " + o.ServerName + " -> homeserver stand-in, others -> https://host"},
	)
	return s, nil
}

// PluginConfig is the filter's plugin configuration for a role, calling the control plane as
// cluster "tim_control".
func (s *Stack) PluginConfig(role string) []byte {
	cfg := map[string]any{
		"role": role,
		"control_plane": map[string]any{
			"cluster": controlCluster, "authority": "control.internal",
			"credential_header": "authorization", "credential": "Bearer " + s.InternalSecret, "timeout": "2s",
		},
		"trust_anchors":    string(s.trust),
		"refresh_interval": "10s",
	}
	if s.opts.RefetchMinInterval > 0 {
		cfg["refetch_min_interval"] = s.opts.RefetchMinInterval.String()
	}
	b, _ := json.Marshal(cfg)
	return b
}

// NewProxy starts a proxy running the compiled filter in the given role in front of upstream, with
// its control-plane callouts going to control (which need not be this stack's control plane: tests
// point it at a closed port). The caller serves and closes it.
func (s *Stack) NewProxy(ctx context.Context, role string, upstream, control *url.URL) (*proxyhost.Server, error) {
	var logf func(int, string)
	if s.opts.FilterLog != nil {
		logf = func(level int, msg string) { s.opts.FilterLog(role, level, msg) }
	}
	return proxyhost.NewServer(ctx, proxyhost.ServerConfig{
		Wasm: s.wasm, PluginConfig: s.PluginConfig(role), Upstream: upstream,
		Clusters:       map[string]*url.URL{controlCluster: control},
		RequestTimeout: 10 * time.Second,
		Client:         &http.Client{Timeout: 10 * time.Second},
		Log:            logf,
	})
}

// StopControl shuts the control plane down (the proxies keep running), as an outage would.
func (s *Stack) StopControl() error {
	s.controlOnce.Do(func() {
		if s.controlCancel == nil {
			return
		}
		s.controlCancel()
		s.controlErr = <-s.controlDone
	})
	return s.controlErr
}

// Close stops everything: the listeners finish their requests in flight (bounded by ctx), then the
// filters, the control plane and the push gateway (which spools what it could not send) stop.
// It returns the first error a part reported, including one a listener hit while serving.
func (s *Stack) Close(ctx context.Context) error {
	var errs []error
	s.closeOnce.Do(func() {
		for i := len(s.httpServers) - 1; i >= 0; i-- {
			if err := s.httpServers[i].Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		for _, role := range []string{"client", "federation", "egress"} {
			if px := s.Proxies[role]; px != nil {
				if err := px.Close(); err != nil {
					errs = append(errs, fmt.Errorf("%s proxy: %w", role, err))
				}
			}
		}
		if s.pushShutdown != nil {
			if err := s.pushShutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("push gateway: %w", err))
			}
		}
		if s.Control != nil && s.controlCancel == nil {
			errs = append(errs, s.Control.Close())
		}
		if err := s.StopControl(); err != nil {
			errs = append(errs, fmt.Errorf("control plane: %w", err))
		}
		for drained := false; !drained; {
			select {
			case err := <-s.serveErrs:
				errs = append(errs, err)
			default:
				drained = true
			}
		}
	})
	return errors.Join(errs...)
}

func (s *Stack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.httpServers = append(s.httpServers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.serveErrs <- fmt.Errorf("serving %s: %w", ln.Addr(), err):
			default:
			}
		}
	}()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

var probeClient = &http.Client{Timeout: 5 * time.Second}

func status(u string, h http.Header) int {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return 0
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return do(req)
}

func do(req *http.Request) int {
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls ok until it holds, ctx ends or limit passes.
func waitFor(ctx context.Context, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
