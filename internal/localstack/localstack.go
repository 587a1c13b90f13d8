// Package localstack wires a complete local Fachdienst: a real Matrix homeserver (Dendrite, a child
// process with SQLite under the data folder), the control plane on SQLite, the push gateway, the
// compiled messenger-proxy filter hosted by proxyhost on three listeners (client-server,
// server-server, egress - the egress terminating the homeserver's CONNECT tunnels), and a STAND-IN
// for the gematik VZD-FHIR-Directory. `make run` (cmd/tim-local) and the end-to-end tests (e2e/)
// both start it, so the wiring exists once.
//
// Nothing here is meant for production: the VZD stand-in keeps its state in memory, signs with a
// throw-away test PKI and accepts fixed credentials; the egress proxy's local CA lies unencrypted in
// the data folder.
package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/timfd/fachdienst/internal/regstack"
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
	offIDP
	offMailSMTP
	offMailWeb
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
	// BasePort is the first of twelve consecutive ports; 0 puts every listener on a free port.
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
	// RequestLog is told the method and path of every request a proxy receives (before its filter),
	// for recording traffic shapes; nil records nothing.
	RequestLog func(role, method, path string)
	// RefetchMinInterval bounds the filters' refetch of the list for a missing domain; 0 keeps the
	// filter's default (10 s).
	RefetchMinInterval time.Duration
	// ControlPollInterval is how often the control plane polls the VZD stand-in (default 30 s, so a
	// domain added there shows up in a local run without waiting an hour).
	ControlPollInterval time.Duration
	// PolicyDir is the policy bundle directory the control plane serves and watches (OPA bundle
	// layout; `make run` gives the working tree's policies/); "" serves the embedded policies.
	PolicyDir string
	// PolicyRefresh is the filters' refresh interval (policy and list fetches); 0 keeps 10 s.
	PolicyRefresh time.Duration
	// NoPush leaves the push gateway out.
	NoPush bool
	// StandInHomeserver runs the in-memory homeserver stand-in instead of Dendrite (tests that must
	// see which requests reached the homeserver; see standin/homeserver).
	StandInHomeserver bool
	// DendriteBin is the directory of the Dendrite binaries; "" finds them (DendriteBinDir).
	DendriteBin string
	// BuildDendrite builds Dendrite when it is missing, reporting progress on Progress.
	BuildDendrite bool
	Progress      io.Writer
	// VZD is a VZD stand-in shared with other stacks (two organisations in one federation), served
	// at VZDURL; its domain list is the caller's. Nil starts an own stand-in that lists ServerName
	// and ExampleDomains.
	VZD    *vzdstandin.Server
	VZDURL string
	// Variant is the TI-M variant of the policy: "basis", "pro" (default) or "epa".
	Variant string
}

// Endpoint is one listener of the stack.
type Endpoint struct {
	Name    string
	URL     string
	StandIn bool   // a stand-in for a system outside the provider
	Note    string // what it is for
}

// User is a demo account on the homeserver.
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
	Homeserver *homeserver.Server // the stand-in, when Options.StandInHomeserver
	Dendrite   *Dendrite          // the real homeserver otherwise
	Control    *server.Server
	// CA issues the certificates of the egress proxy's CONNECT tunnels; the homeserver trusts it.
	CA *proxyhost.LocalCA
	// Routes maps server names to where the egress forwarder sends them (loopback addresses of
	// other organisations' server-server proxies); names not in it go to https://name.
	Routes  *Routes
	Proxies map[string]*proxyhost.Server // by role: client, federation, egress
	// Registration: the IDP stand-in and the mail sink of the Org-Admin portal.
	Registration *regstack.Local

	// URLs of the listeners.
	ClientURL, FederationURL, EgressURL     string
	ControlURL, ControlInternalURL, PushURL string
	HomeserverURL, VZDURL, ForwarderURL     string
	Endpoints                               []Endpoint
	PushError                               error // why the push gateway is not running, if it is not
	// PushSink receives what the push gateway delivers for the last demo user's (bob's) pusher (a Web Push
	// provider and device STAND-IN, served at PushURL + /push-sink/).
	PushSink      *PushSink
	wasm, trust   []byte
	opts          Options
	httpServers   []*http.Server
	serveErrs     chan error
	controlCancel context.CancelFunc
	controlDone   chan error
	controlOnce   sync.Once
	controlErr    error
	pushShutdown  func(context.Context) error
	closeOnce     sync.Once
	ownVZD        bool
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

	if s.CA, err = proxyhost.LoadOrCreateLocalCA(filepath.Join(o.DataDir, "ca")); err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	// The proxies' listeners first: the homeserver is told where its egress proxy and its
	// client-server listener (/.well-known/matrix/client) are.
	proxyLns := map[string]net.Listener{}
	for _, p := range []struct {
		role string
		off  int
		dst  *string
	}{{"client", offClient, &s.ClientURL}, {"federation", offFederation, &s.FederationURL}, {"egress", offEgress, &s.EgressURL}} {
		ln, u, err := listen(p.off)
		if err != nil {
			for _, l := range proxyLns {
				l.Close()
			}
			return nil, err
		}
		proxyLns[p.role], *p.dst = ln, u
	}
	defer func() {
		if err != nil {
			for _, l := range proxyLns {
				l.Close()
			}
		}
	}()

	// The VZD stand-in: the control plane needs it.
	if o.VZD != nil {
		s.VZD, s.VZDURL = o.VZD, o.VZDURL
	} else {
		vzdLn, vzdURL, err := listen(offVZD)
		if err != nil {
			return nil, err
		}
		// The own domain is the KIM demo organisation's: its Org-Admin orders it in the portal and the
		// operator's approval takes the entry over, so its users can be blocked there.
		domains := append([]vzdstandin.Domain{{Domain: o.ServerName, TelematikID: regstack.Klinik.TelematikID, TimAnbieter: "Local Provider"}}, ExampleDomains...)
		// The provider named in the own domain's entry is this stand-in's client, so the registration
		// service may change and delete it and the organisation check sees it.
		if s.VZD, err = vzdstandin.New(vzdstandin.WithDomains(domains...), vzdstandin.WithClient(vzdClientID, vzdClientSecret),
			vzdstandin.WithProvider("Local Provider")); err != nil {
			vzdLn.Close()
			return nil, err
		}
		s.serve(vzdLn, s.VZD)
		s.VZDURL, s.ownVZD = vzdURL, true
	}
	s.trust = s.VZD.TrustAnchorPEM()

	// The homeserver.
	var hsURL, adminToken, accountDataAPI string
	if o.StandInHomeserver {
		hsLn, u, err := listen(offHomeserver)
		if err != nil {
			return nil, err
		}
		hsURL, adminToken, accountDataAPI = u, randomHex(16), "synapse-admin"
		s.Homeserver = homeserver.New(o.ServerName, adminToken)
		s.Users = []User{
			{MXID: s.Homeserver.AddUser("alice", "alice-local-password"), Password: "alice-local-password"},
			{MXID: s.Homeserver.AddUser("bob", "bob-local-password"), Password: "bob-local-password"},
		}
		s.serve(hsLn, s.Homeserver)
	} else {
		bin := o.DendriteBin
		if bin == "" {
			if bin, err = DendriteBinDir(); errors.Is(err, ErrNoDendrite) && o.BuildDendrite {
				bin, err = BuildDendrite(ctx, o.Progress)
			}
			if err != nil {
				return nil, err
			}
		}
		port := 0
		if o.BasePort != 0 {
			port = o.BasePort + offHomeserver
		}
		if s.Dendrite, err = StartDendrite(ctx, DendriteConfig{
			BinDir: bin, Port: port, Dir: filepath.Join(o.DataDir, "dendrite"), ServerName: o.ServerName, Host: o.Host,
			HTTPSProxy: s.EgressURL, TrustPEM: s.CA.CertPEM(), WellKnownClient: s.ClientURL,
		}); err != nil {
			return nil, fmt.Errorf("localstack: %w", err)
		}
		hsURL, adminToken, accountDataAPI = s.Dendrite.URL, s.Dendrite.ASToken, "appservice"
		for _, local := range []string{"alice", "bob"} {
			mxid, err := s.Dendrite.Register(ctx, local, local+"-local-password", false)
			if err != nil {
				return nil, fmt.Errorf("localstack: %w", err)
			}
			s.Users = append(s.Users, User{MXID: mxid, Password: local + "-local-password"})
		}
	}
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
	cfg.Homeserver.URL, cfg.Homeserver.AdminToken, cfg.Homeserver.AccountDataAPI = hsURL, adminToken, accountDataAPI
	cfg.VZD.BaseURL, cfg.VZD.ClientID, cfg.VZD.ClientSecret, cfg.VZD.SigAlg = s.VZDURL, vzdClientID, vzdClientSecret, "BP256R1"
	cfg.Federation.RefreshInterval = o.ControlPollInterval
	// The variant and every other rule come from the policy data (policies/data.json), so that an
	// edit of the data alone switches them.
	cfg.Policy.Dir, cfg.Policy.Watch = o.PolicyDir, o.PolicyDir != ""
	if o.Variant != "" {
		cfg.Policy.Variant = o.Variant
	}
	cfg.Policy.OwnDomains = []string{o.ServerName}
	cfg.Policy.ApprovedClientIDs = []string{ApprovedClientID}
	cfg.Contacts.ServiceProvider = "Local Fachdienst (stand-ins)"
	if err := s.startRegistration(ctx, &cfg, listen, pubURL, intURL); err != nil {
		pubLn.Close()
		intLn.Close()
		return nil, err
	}
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
	s.Routes = NewRoutes()
	s.Routes.Set(o.ServerName, hsU)
	s.serve(fwdLn, NewForwarder(s.Routes))
	s.ForwarderURL = fwdURL

	// The three proxies, each running the compiled filter; the egress proxy behind the CONNECT
	// tunnels' TLS termination.
	cp, _ := url.Parse(intURL)
	for _, p := range []struct{ role, upstream string }{{"client", hsURL}, {"federation", hsURL}, {"egress", fwdURL}} {
		up, _ := url.Parse(p.upstream)
		px, err := s.NewProxy(ctx, p.role, up, cp)
		if err != nil {
			return nil, fmt.Errorf("localstack: %s proxy: %w", p.role, err)
		}
		s.Proxies[p.role] = px
		var h http.Handler = px
		if o.RequestLog != nil {
			h = logRequests(p.role, h, o.RequestLog)
		}
		if p.role == "egress" {
			h = proxyhost.ConnectTunnel(px, s.CA)
		}
		s.serve(proxyLns[p.role], h)
		delete(proxyLns, p.role)
	}

	if !o.NoPush {
		s.PushError = s.startPush(listen)
		if s.PushError == nil && s.Dendrite != nil && len(s.Users) > 0 {
			s.PushError = s.registerPusher(ctx, s.Users[len(s.Users)-1])
		}
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

	hsName := "Dendrite " + DendriteVersion
	if o.StandInHomeserver {
		hsName = "homeserver stand-in"
	}
	s.Endpoints = []Endpoint{
		{"client-server proxy", s.ClientURL, false, "tim-filter (role client) -> " + hsName},
		{"server-server proxy", s.FederationURL, false, "tim-filter (role federation) -> " + hsName},
		{"egress proxy", s.EgressURL, false, "CONNECT (TLS ends here, local CA " + filepath.Join(o.DataDir, "ca", "ca.pem") + ") or plain forward proxy -> tim-filter (role egress) -> egress forwarder"},
		{"control plane", s.ControlURL, false, "contact management /tim-contact-mgmt/, /readyz, /metrics"},
		{"control plane internal", s.ControlInternalURL, false, "/internal/v1/* for the proxies (shared secret)"},
	}
	s.Endpoints = append(s.Endpoints, s.registrationEndpoints()...)
	if s.PushURL != "" {
		note := "POST /_matrix/push/v1/notify (Web Push app " + pushAppID + ")"
		if s.PushSink != nil {
			note += "; GET " + sinkPath + ": what the push provider/device STAND-IN received and decrypted"
		}
		s.Endpoints = append(s.Endpoints, Endpoint{"push gateway", s.PushURL, false, note})
	}
	if o.StandInHomeserver {
		s.Endpoints = append(s.Endpoints, Endpoint{"homeserver", s.HomeserverURL, true, "Matrix homeserver stand-in for " + o.ServerName + " (in memory)"})
	} else {
		s.Endpoints = append(s.Endpoints, Endpoint{"homeserver", s.HomeserverURL, false,
			"Dendrite " + DendriteVersion + " for " + o.ServerName + " (SQLite and log in " + filepath.Join(o.DataDir, "dendrite") + ")"})
	}
	if s.ownVZD {
		s.Endpoints = append(s.Endpoints, Endpoint{"VZD-FHIR-Directory", s.VZDURL, true, "VZD stand-in, signs BP256R1/ES256 lists with a test CA"})
	}
	s.Endpoints = append(s.Endpoints,
		Endpoint{"egress forwarder", s.ForwarderURL, false, "behind the egress proxy; " + o.ServerName + " -> homeserver, others -> https://host"})
	if err := s.writeOperatorEnv(); err != nil {
		return nil, err
	}
	return s, nil
}

// CACertFile is the file of the egress proxy's local CA (for clients of its CONNECT tunnels).
func (s *Stack) CACertFile() string { return filepath.Join(s.opts.DataDir, "ca", "ca.pem") }

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
	if s.opts.PolicyRefresh > 0 {
		cfg["refresh_interval"] = s.opts.PolicyRefresh.String()
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
		if s.Dendrite != nil {
			if err := s.Dendrite.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("dendrite: %w", err))
			}
		}
		if s.Control != nil && s.controlCancel == nil {
			errs = append(errs, s.Control.Close())
		}
		if err := s.StopControl(); err != nil {
			errs = append(errs, fmt.Errorf("control plane: %w", err))
		}
		if s.Registration != nil {
			if err := s.Registration.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("registration stand-ins: %w", err))
			}
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

// NewVZD returns a VZD stand-in listing domains, with the OAuth2 client every stack's control plane
// uses: several stacks given it (Options.VZD) form one federation.
func NewVZD(domains ...vzdstandin.Domain) (*vzdstandin.Server, error) {
	return vzdstandin.New(vzdstandin.WithDomains(domains...), vzdstandin.WithClient(vzdClientID, vzdClientSecret))
}

// logRequests tells log the method and path of each request before next serves it.
func logRequests(role string, next http.Handler, log func(role, method, path string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log(role, r.Method, r.URL.RequestURI())
		next.ServeHTTP(w, r)
	})
}
