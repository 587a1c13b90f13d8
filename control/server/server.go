// Package server assembles the control plane from its configuration: storage, the VZD client, the
// federation list lifecycle, the policy revision, invite decisions, the contact management API and
// the internal API for the messenger proxies, plus health, readiness and metrics.
//
// Two listeners: the public one (contact management behind Envoy, /healthz, /readyz, /metrics) and
// the internal one (/internal/v1/* for the proxies, authenticated with shared secrets). With an
// empty internal listen address the internal API is served on the public listener; it stays
// authenticated there.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/contacts"
	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/control/internalapi"
	"github.com/timfd/fachdienst/control/invite"
	"github.com/timfd/fachdienst/control/orgadmin"
	"github.com/timfd/fachdienst/control/orgcheck"
	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/control/regtoken"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/userblock"
	"github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Deps replaces parts that tests, benchmarks and local runs provide themselves. Zero values take
// the production choice.
type Deps struct {
	Logger         *slog.Logger
	Registry       *prometheus.Registry
	TrustAnchorPEM []byte       // overrides federation.trust_anchor_file
	VZDHTTPClient  *http.Client // e.g. one that trusts a local stand-in
	Now            func() time.Time
	// Registration service: the RegService token signer and the user blocker; without them the
	// portal answers 503 for those operations. IDPHTTPClient reaches the central IDP.
	TokenIssuer   orgadmin.TokenIssuer
	UserBlocker   orgadmin.UserBlocker
	IDPHTTPClient *http.Client
}

// Server is the assembled control plane.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	now      func() time.Time
	Store    *store.Store
	VZD      *vzd.Client
	Fed      *federation.Manager
	Policy   *policyserve.Server
	Invite   *invite.Decider
	OrgAdmin *orgadmin.Handler // nil unless registration.enabled
	// The registration service's parts behind the portal (registration.enabled): the RegService
	// token signer (nil without regtoken.key_file), the user blocker (nil without a homeserver admin
	// token) and the organisation check.
	Tokens    *regtoken.Signer
	UserBlock *userblock.Blocker
	OrgCheck  *orgcheck.Checker
	public    *gin.Engine
	internal  *gin.Engine // nil when served on the public listener
}

// NewLogger returns the JSON logger at the configured level.
func NewLogger(cfg config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// New builds every part. It opens (and migrates) the storage, restores the stored federation list
// and compiles the policy; it contacts neither the VZD nor the homeserver.
func New(ctx context.Context, cfg config.Config, deps Deps) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: deps.Logger, reg: deps.Registry, now: deps.Now}
	if s.log == nil {
		s.log = NewLogger(cfg.Log)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.VZD.BaseURL == "" {
		return nil, errors.New("server: vzd.base_url is required")
	}
	if len(cfg.Internal.SharedSecrets) == 0 {
		return nil, errors.New("server: internal.shared_secrets is required; the internal API is never open")
	}
	pem := deps.TrustAnchorPEM
	if pem == nil {
		if cfg.Federation.TrustAnchorFile == "" {
			return nil, errors.New("server: federation.trust_anchor_file is required")
		}
		if pem, err = os.ReadFile(cfg.Federation.TrustAnchorFile); err != nil {
			return nil, fmt.Errorf("server: trust anchors: %w", err)
		}
	}
	trust, err := fedlist.NewTrustStore(pem)
	if err != nil {
		return nil, fmt.Errorf("server: trust anchors: %w", err)
	}

	if s.Store, err = store.Open(ctx, store.Options{PostgresDSN: cfg.Storage.PostgresDSN, SQLitePath: cfg.Storage.SQLitePath}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Store.Close()
		}
	}()
	s.log.Info("storage ready", "dialect", string(s.Store.Dialect()))

	var rootCAs []byte
	if cfg.VZD.RootCAFile != "" {
		if rootCAs, err = os.ReadFile(cfg.VZD.RootCAFile); err != nil {
			return nil, fmt.Errorf("server: vzd root CAs: %w", err)
		}
	}
	if s.VZD, err = vzd.New(vzd.Config{
		BaseURL: cfg.VZD.BaseURL, TokenURL: cfg.VZD.TokenURL, AuthenticateURL: cfg.VZD.AuthenticateURL,
		ServicesURL: cfg.VZD.ServicesURL, RootCAsPEM: rootCAs,
		ClientID: cfg.VZD.ClientID, ClientSecret: cfg.VZD.ClientSecret, SigAlg: cfg.VZD.SigAlg,
		Timeout: cfg.VZD.Timeout, HTTPClient: deps.VZDHTTPClient,
		Metrics: vzd.NewMetrics(s.reg), Logger: s.log.With("component", "vzd"),
	}); err != nil {
		return nil, err
	}
	if s.Fed, err = federation.New(federation.Config{
		PollInterval: cfg.Federation.RefreshInterval, TTL: cfg.Federation.MaxAge, IncidentWebhook: cfg.Federation.IncidentWebhook,
	}, s.VZD, federation.FedlistVerifier(trust), federation.FromStore(s.Store), federation.RealClock{},
		s.log.With("component", "federation"), federation.NewMetrics(s.reg)); err != nil {
		return nil, err
	}
	if err = s.Fed.Load(ctx); err != nil {
		return nil, err
	}

	if cfg.Registration.Enabled {
		if s.Tokens, err = newTokenIssuer(cfg.RegToken); err != nil {
			return nil, err
		}
		if s.UserBlock, err = s.newUserBlocker(ctx, cfg); err != nil {
			return nil, err
		}
		if s.OrgCheck, err = s.newOrgCheck(cfg); err != nil {
			return nil, err
		}
		s.log.Info("registration service", "regservice_tokens", s.Tokens != nil || deps.TokenIssuer != nil,
			"user_blocking", s.UserBlock != nil || deps.UserBlocker != nil, "organisation_check_interval", cfg.OrgCheck.Interval.String())
	}

	pcfg := policyserve.Config{
		Dir: cfg.Policy.Dir, Bundle: cfg.Policy.Bundle, DataFile: cfg.Policy.DataFile,
		Operator: policyserve.Operator{Variant: cfg.Policy.Variant, OwnDomains: cfg.Policy.OwnDomains, ApprovedClientIDs: cfg.Policy.ApprovedClientIDs},
		Logger:   s.log, Now: s.now,
	}
	if s.UserBlock != nil {
		// The blocked users reach the proxies as policy data (config.blocked_users).
		pcfg.ExtraData = s.UserBlock.MergeData
	}
	if s.Policy, err = policyserve.New(ctx, pcfg); err != nil {
		return nil, err
	}
	var perms invite.PermissionSource
	if cfg.Homeserver.AdminToken != "" {
		if perms, err = invite.NewAccountDataPermissions(cfg.Homeserver.AccountDataAPI, cfg.Homeserver.URL, cfg.Homeserver.AdminToken, cfg.Homeserver.Timeout); err != nil {
			return nil, err
		}
	}
	if s.Invite, err = invite.New(ctx, invite.Options{
		Releases: s.Store, Localizer: s.VZD, Permissions: perms, Insurance: &insuranceIndex{fed: s.Fed},
		CacheSize: cfg.Invite.CacheSize, CacheTTL: cfg.Invite.CacheTTL, Timeout: cfg.Invite.Timeout,
		Now: s.now, Logger: s.log.With("component", "invite"), Registerer: s.reg,
	}, s.Policy.Current().FS, s.Policy.Current().Data); err != nil {
		return nil, err
	}

	internal, err := internalapi.New(internalapi.Config{
		Secrets: cfg.Internal.SharedSecrets, Federation: s.Fed, Policy: s.Policy, Logger: s.log,
		Invite: internalapi.InviteDeciderFunc(func(ctx context.Context, inviter, invitee string) (internalapi.Decision, error) {
			d, err := s.Invite.Decide(ctx, inviter, invitee)
			return internalapi.Decision{Allow: d.Allow, Stage: d.Stage, Reason: d.Reason}, err
		}),
	})
	if err != nil {
		return nil, err
	}
	metrics := newHTTPMetrics(s.reg)

	gin.SetMode(gin.ReleaseMode)
	s.public = gin.New()
	s.public.Use(gin.Recovery(), metrics.middleware("public"), s.accessLog)
	s.public.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	s.public.GET("/readyz", s.readyz)
	s.public.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	oid := contacts.NewOpenID(cfg.Homeserver.URL, &http.Client{Timeout: cfg.Homeserver.Timeout}, cfg.Homeserver.TokenCacheSize, cfg.Homeserver.TokenCacheTTL)
	contacts.New(contacts.Options{
		Store: s.Store, Verifier: oid, MaxPerOwner: cfg.Contacts.MaxPerOwner, MaxBodyBytes: cfg.Public.MaxBodyBytes,
		Contact: cfg.Contacts.ServiceContact, Provider: cfg.Contacts.ServiceProvider, Now: s.now,
		Logger: s.log.With("component", "contacts"),
	}).Register(s.public)

	internalRouter := s.public
	if cfg.Internal.Listen != "" {
		s.internal = gin.New()
		s.internal.Use(gin.Recovery(), metrics.middleware("internal"))
		internalRouter = s.internal
	}
	internal.Register(internalRouter)
	if cfg.Registration.Enabled {
		if s.OrgAdmin, err = s.newRegistration(cfg.Registration, deps); err != nil {
			return nil, err
		}
		s.mountRegistration(s.public, internalRouter.Group("", internal.Authenticate()))
		s.OrgCheck.RegisterAdmin(internalRouter.Group("", internal.Authenticate()))
	}
	// The policy reload is an operator action: it shares the proxies' credential and listener, never the
	// public one's openness.
	s.registerOperator(internalRouter.Group("", internal.Authenticate()))
	s.Policy.RegisterAdmin(internalRouter.Group("", internal.Authenticate()), s.Reload, func(ctx context.Context, rev *policyserve.Revision) error {
		return s.Invite.SetPolicy(ctx, rev.FS, rev.Data)
	})
	return s, nil
}

// PublicHandler serves the public listener's routes.
func (s *Server) PublicHandler() http.Handler { return s.public }

// InternalHandler serves the internal API (the public handler when both share a listener).
func (s *Server) InternalHandler() http.Handler {
	if s.internal == nil {
		return s.public
	}
	return s.internal
}

// readyz: ready when the storage answers and a federation list is held.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{"storage": "ok", "federation_list": "ok"}
	ready := true
	if err := s.Store.Ping(ctx); err != nil {
		checks["storage"], ready = "unreachable", false
	}
	if s.Fed.Current() == nil {
		checks["federation_list"], ready = "none held", false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ready, "checks": checks})
}

// accessLog logs route templates, never raw paths: contact paths carry MXIDs.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.log.Debug("request", "method", c.Request.Method, "route", route, "status", c.Writer.Status(), "duration_ms", float64(time.Since(start).Microseconds())/1000)
}

// Reload re-reads the policy (Rego and data) for the proxies and the invite decisions. On error
// the previous policy stays in service for both.
func (s *Server) Reload(ctx context.Context) error {
	rev, err := s.Policy.Reload(ctx)
	if err != nil {
		return err
	}
	if err := s.Invite.SetPolicy(ctx, rev.FS, rev.Data); err != nil {
		s.log.Error("invite policy refused; previous kept", "error", err.Error())
		return err
	}
	s.log.Info("policy reloaded", "revision", rev.Revision)
	return nil
}

// Run listens on the configured addresses and serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	pub, err := net.Listen("tcp", s.cfg.Public.Listen)
	if err != nil {
		return fmt.Errorf("server: public listener: %w", err)
	}
	var in net.Listener
	if s.internal != nil {
		if in, err = net.Listen("tcp", s.cfg.Internal.Listen); err != nil {
			pub.Close()
			return fmt.Errorf("server: internal listener: %w", err)
		}
	}
	return s.Serve(ctx, pub, in)
}

// Serve serves on the given listeners (internal may be nil when the internal API shares the public
// listener) and runs the background jobs until ctx ends. It then stops accepting, lets requests in
// flight finish within public.shutdown_timeout, stops the jobs and closes the storage.
func (s *Server) Serve(ctx context.Context, public, internal net.Listener) error {
	if internal != nil && s.internal == nil {
		return errors.New("server: internal listener given, but the internal API shares the public listener")
	}
	jobs, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.Fed.Run(jobs) })
	if s.cfg.Policy.Watch {
		if err := s.Policy.Watch(jobs, s.Reload); err != nil {
			s.log.Error("policy sources not watched; reload with SIGHUP or the admin API", "error", err.Error())
		}
	}
	if s.OrgAdmin != nil {
		wg.Go(func() { s.runRegistrationPurge(jobs) })
	}
	if s.UserBlock != nil {
		wg.Go(func() { s.runBlockSync(jobs) })
	}
	if s.OrgCheck != nil {
		if err := s.OrgCheck.Start(jobs, s.cfg.OrgCheck.Interval, time.Hour); err != nil {
			stopJobs()
			wg.Wait()
			return err
		}
	}
	wg.Go(func() {
		contacts.RunPurge(jobs, s.Store, s.cfg.Contacts.PurgeInterval, s.now, s.log.With("component", "contacts"))
	})

	servers := []*http.Server{{Handler: s.public, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}}
	listeners := []net.Listener{public}
	if internal != nil {
		servers = append(servers, &http.Server{Handler: s.internal, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute})
		listeners = append(listeners, internal)
	}
	errs := make(chan error, len(servers))
	for i, srv := range servers {
		s.log.Info("listening", "listener", []string{"public", "internal"}[i], "addr", listeners[i].Addr().String())
		go func() {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Public.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Warn("shutdown incomplete", "error", err.Error())
		}
	}
	stopJobs()
	wg.Wait()
	if err := s.Store.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// Close releases the storage of a server that was built but never served.
func (s *Server) Close() error { return s.Store.Close() }

// insuranceIndex answers isInsurance from the federation list held, re-parsing the list's payload
// once per version. The list was verified when it was taken in.
type insuranceIndex struct {
	fed     *federation.Manager
	mu      sync.RWMutex
	version int64
	domains map[string]bool
}

func (x *insuranceIndex) IsInsurance(domain string) bool {
	snap := x.fed.Current()
	if snap == nil {
		return false
	}
	x.mu.RLock()
	if x.domains != nil && x.version == snap.Version {
		v := x.domains[insuranceKey(domain)]
		x.mu.RUnlock()
		return v
	}
	x.mu.RUnlock()
	_, list, err := fedlist.ParseUnverified(snap.JWS)
	if err != nil {
		return false
	}
	m := make(map[string]bool, len(list.Domains))
	for d, e := range list.Domains {
		if e.IsInsurance {
			m[d] = true
		}
	}
	x.mu.Lock()
	x.version, x.domains = snap.Version, m
	x.mu.Unlock()
	return m[insuranceKey(domain)]
}

// insuranceKey is the domain of a server name as the filter compares it
// (matrix.ServerDomain: lower-cased, port removed); a value that is no
// server name keeps its lower-cased self and matches no listed domain.
func insuranceKey(domain string) string {
	if d, ok := matrix.ServerDomain(domain); ok {
		return d
	}
	return strings.ToLower(domain)
}
