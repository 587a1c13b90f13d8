// Package federation keeps the registration service's copy of the TI federation list current, as
// gemSpec_TI-Messenger-FD 5.1.1.1.6 and its table 2 require:
//
//   - the list is fetched from the VZD every PollInterval (1 h), sending the known version so that the VZD
//     answers 204 when nothing changed; a 204 confirms the list and resets its age (Age_FederationList);
//   - HealthState_VZD is healthy while the VZD answers within HealthTimeout (10 s); after a failed update
//     up to MaxChecks (3) further checks run CheckInterval (5 min) apart (HealthStateCheck_VZD); when they
//     all fail an incident event is raised (slog event "vzd_incident", metric, optional webhook) and the
//     list is kept, for at most TTL (TTL_FederationList, 72 h), after which it is reported outdated;
//   - when a proxy asks for the list and the copy is older than RefreshAge (1 h) while the VZD is healthy,
//     the list is refreshed first (single-flight: concurrent proxies share one VZD call);
//   - every list is verified (signature, x5c chain to the trust anchor, payload) before it is stored; the
//     last good list is persisted through a Store and survives a restart.
//
// All timing runs on an injectable Clock.
package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Store persists the last good list. Load returns a nil jws and a nil error when nothing is stored yet.
type Store interface {
	Save(ctx context.Context, jws []byte, version int64, fetchedAt time.Time) error
	Load(ctx context.Context) (jws []byte, version int64, fetchedAt time.Time, err error)
}

// Fetcher is the VZD's getFederationList; *vzd.Client implements it. With version > 0 it reports
// current=true (and no JWS) when the VZD holds nothing newer.
type Fetcher interface {
	FederationList(ctx context.Context, version int64) (jws []byte, current bool, err error)
}

// Verifier checks a compact JWS (signature, certificate chain, payload) at time now and returns the list's
// version and number of domains. FedlistVerifier adapts wasm/fedlist, the verifier the filter uses too.
type Verifier func(jws []byte, now time.Time) (version int64, domains int, err error)

// Config holds the lifecycle parameters; zero values take the specification's values.
type Config struct {
	PollInterval  time.Duration // 1 h
	HealthTimeout time.Duration // 10 s
	CheckInterval time.Duration // 5 min
	MaxChecks     int           // 3
	TTL           time.Duration // 72 h
	RefreshAge    time.Duration // 1 h
	// IncidentWebhook, when set, receives a JSON POST on incident and on recovery (e.g. an ITSM intake).
	IncidentWebhook string
	WebhookClient   *http.Client
}

func (c *Config) defaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = time.Hour
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = 10 * time.Second
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = 5 * time.Minute
	}
	if c.MaxChecks <= 0 {
		c.MaxChecks = 3
	}
	if c.TTL <= 0 {
		c.TTL = 72 * time.Hour
	}
	if c.RefreshAge <= 0 {
		c.RefreshAge = time.Hour
	}
	if c.WebhookClient == nil {
		c.WebhookClient = &http.Client{Timeout: 10 * time.Second}
	}
}

// Snapshot is one verified list as served to proxies. It is immutable; the precomputed fields let the
// internal API answer without work per request.
type Snapshot struct {
	JWS           []byte
	Version       int64
	VersionHeader string    // Version formatted for X-Federation-Version
	UpdatedAt     time.Time // last time the VZD delivered or confirmed this list (origin of Age_FederationList)
	Domains       int
}

// Health is the state of table 2.
type Health struct {
	Healthy        bool          `json:"healthy"`         // HealthState_VZD
	Checks         int           `json:"checks"`          // HealthStateCheck_VZD
	Age            time.Duration `json:"age"`             // Age_FederationList
	Outdated       bool          `json:"outdated"`        // Age > TTL_FederationList
	IncidentActive bool          `json:"incident_active"` // incident raised and not yet resolved
	Version        int64         `json:"version"`
	LastError      string        `json:"last_error,omitempty"`
	LastCause      string        `json:"last_cause,omitempty"` // Cause of LastError
}

// Manager runs the lifecycle. Create it with New, call Run in a goroutine, and serve proxies from
// ForProxy.
type Manager struct {
	cfg     Config
	fetch   Fetcher
	verify  Verifier
	store   Store
	clock   Clock
	log     *slog.Logger
	metrics *Metrics

	snap atomic.Pointer[Snapshot]
	sf   singleflight.Group
	kick chan struct{}

	mu        sync.Mutex // guards the health fields
	healthy   bool
	checks    int
	incident  bool
	lastError string
	lastCause string
	incidents incidentLog
}

// New returns a Manager. metrics may be nil (unregistered collectors), log nil (slog.Default()).
func New(cfg Config, fetch Fetcher, verify Verifier, store Store, clock Clock, log *slog.Logger, metrics *Metrics) (*Manager, error) {
	if fetch == nil || verify == nil || store == nil {
		return nil, errors.New("federation: fetcher, verifier and store are required")
	}
	cfg.defaults()
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	m := &Manager{cfg: cfg, fetch: fetch, verify: verify, store: store, clock: clock,
		log: log.With("component", "federation"), metrics: metrics, kick: make(chan struct{}, 1), healthy: true}
	metrics.bind(m)
	return m, nil
}

// Current returns the list held now, or nil before the first good list.
func (m *Manager) Current() *Snapshot { return m.snap.Load() }

// Outdated reports whether s is older than TTL_FederationList (a nil snapshot is outdated).
func (m *Manager) Outdated(s *Snapshot) bool {
	return s == nil || m.clock.Now().Sub(s.UpdatedAt) > m.cfg.TTL
}

// Health returns the table-2 state.
func (m *Manager) Health() Health {
	s := m.snap.Load()
	m.mu.Lock()
	h := Health{Healthy: m.healthy, Checks: m.checks, IncidentActive: m.incident, LastError: m.lastError, LastCause: m.lastCause}
	m.mu.Unlock()
	if s != nil {
		h.Age = m.clock.Now().Sub(s.UpdatedAt)
		h.Version = s.Version
	}
	h.Outdated = m.Outdated(s)
	return h
}

func (m *Manager) isHealthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.healthy
}

// ForProxy is what a proxy's request for the list gets: when the copy is older than RefreshAge and the VZD
// is healthy, the list is refreshed first (one VZD call however many proxies ask at once). A failed
// refresh is not the proxy's problem: it gets the list held, and the health checks take over.
func (m *Manager) ForProxy(ctx context.Context) *Snapshot {
	s := m.snap.Load()
	if s != nil && m.clock.Now().Sub(s.UpdatedAt) <= m.cfg.RefreshAge {
		return s
	}
	if !m.isHealthy() {
		return s
	}
	if err := m.refreshIfStale(ctx); err != nil {
		// Start the 5-minute checks now rather than at the next hourly poll.
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return m.snap.Load()
}

// Refresh asks the VZD for a newer list once (shared by concurrent callers) and updates the health state.
// The VZD call runs detached from ctx so that one impatient caller does not fail the others; ctx only
// bounds how long this caller waits.
func (m *Manager) Refresh(ctx context.Context) error {
	return m.inFlight(ctx, func() error { return m.update(context.WithoutCancel(ctx)) })
}

// refreshIfStale is Refresh for proxy requests. The conditions are checked again inside the flight: a
// request that looked at the list just before another flight renewed it must not start a second call.
func (m *Manager) refreshIfStale(ctx context.Context) error {
	return m.inFlight(ctx, func() error {
		if s := m.snap.Load(); s != nil && m.clock.Now().Sub(s.UpdatedAt) <= m.cfg.RefreshAge {
			return nil
		}
		if !m.isHealthy() {
			return nil
		}
		return m.update(context.WithoutCancel(ctx))
	})
}

// inFlight runs refresh in the one refresh flight (joining a running one) and waits for it as long as
// ctx allows.
func (m *Manager) inFlight(ctx context.Context, refresh func() error) error {
	ch := m.sf.DoChan("refresh", func() (any, error) { return nil, refresh() })
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errTimeout marks an answer that did not come within HealthTimeout.
var errTimeout = errors.New("VZD did not answer in time")

func (m *Manager) update(ctx context.Context) error {
	cur := m.snap.Load()
	var known int64
	if cur != nil {
		known = cur.Version
	}
	cctx, cancel := context.WithTimeout(ctx, m.cfg.HealthTimeout)
	defer cancel()
	jws, current, err := m.fetch.FederationList(cctx, known)
	if err != nil {
		if cctx.Err() != nil {
			err = fmt.Errorf("%w within %s: %v", errTimeout, m.cfg.HealthTimeout, err)
		}
		m.metrics.updates.WithLabelValues("failed").Inc()
		return m.failed(err)
	}
	now := m.clock.Now()
	var next *Snapshot
	switch {
	case current && cur == nil:
		m.metrics.updates.WithLabelValues("invalid").Inc()
		return m.failed(fmt.Errorf("%w: VZD answered 'current' although no list is held", errInvalidVersion))
	case current:
		c := *cur
		c.UpdatedAt = now
		next = &c
		m.metrics.updates.WithLabelValues("current").Inc()
	default:
		version, domains, verr := m.verify(jws, now)
		if verr != nil {
			m.metrics.updates.WithLabelValues("invalid").Inc()
			return m.failed(fmt.Errorf("list rejected: %w", verr))
		}
		if cur != nil && version < cur.Version {
			m.metrics.updates.WithLabelValues("invalid").Inc()
			return m.failed(fmt.Errorf("list rejected: %w %d is older than the held version %d", errInvalidVersion, version, cur.Version))
		}
		next = &Snapshot{JWS: bytes.Clone(jws), Version: version, VersionHeader: strconv.FormatInt(version, 10), UpdatedAt: now, Domains: domains}
		m.metrics.updates.WithLabelValues("updated").Inc()
		if cur == nil || version != cur.Version {
			m.log.Info("federation list updated", "event", "federation_list_updated", "version", version, "domains", domains)
		}
	}
	m.snap.Store(next)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := m.store.Save(sctx, next.JWS, next.Version, next.UpdatedAt); err != nil {
		// The list is good and served from memory; only the restart case is affected.
		m.metrics.storeErrors.Inc()
		m.log.Error("federation list could not be persisted", "error", err.Error())
	}
	m.succeeded()
	return nil
}

func (m *Manager) failed(err error) error {
	m.mu.Lock()
	m.healthy = false
	m.lastError, m.lastCause = err.Error(), Cause(err)
	m.mu.Unlock()
	m.log.Warn("federation list update failed", "event", "federation_update_failed", "cause", Cause(err), "error", err.Error())
	return err
}

func (m *Manager) succeeded() {
	m.mu.Lock()
	wasIncident := m.incident
	m.healthy, m.checks, m.incident, m.lastError, m.lastCause = true, 0, false, "", ""
	m.mu.Unlock()
	if wasIncident {
		m.incidents.resolve(m.clock.Now())
		m.log.Info("VZD reachable again, incident resolved", "event", "vzd_recovered")
		m.notify("vzd_recovered")
	}
}

// Load restores the last good list from the store, verifying it again (the stored copy is only as good as
// its signature). It is called by Run; call it directly to serve before the first poll completes.
func (m *Manager) Load(ctx context.Context) error {
	jws, _, fetchedAt, err := m.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("federation: loading stored list: %w", err)
	}
	if jws == nil {
		return nil
	}
	version, domains, err := m.verify(jws, m.clock.Now())
	if err != nil {
		m.log.Warn("stored federation list no longer verifies; ignoring it", "error", err.Error())
		return nil
	}
	m.snap.Store(&Snapshot{JWS: jws, Version: version, VersionHeader: strconv.FormatInt(version, 10), UpdatedAt: fetchedAt, Domains: domains})
	m.log.Info("federation list restored", "version", version, "domains", domains, "age", m.clock.Now().Sub(fetchedAt).Round(time.Second).String())
	return nil
}

// Run loads the stored list (unless Load already did) and then polls until ctx ends. It returns ctx.Err().
func (m *Manager) Run(ctx context.Context) error {
	if m.snap.Load() == nil {
		if err := m.Load(ctx); err != nil {
			m.log.Error("federation list restore failed", "error", err.Error())
		}
	}
	due := m.clock.Now() // the next VZD call; at once unless a restored list is younger than PollInterval
	if s := m.snap.Load(); s != nil {
		due = s.UpdatedAt.Add(m.cfg.PollInterval)
	}
	checking := false // inside a series of HealthStateCheck_VZD retries
	for {
		timer := m.clock.NewTimer(due.Sub(m.clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C():
		case <-m.kick:
			timer.Stop()
			// A proxy-triggered refresh failed: start the checks now instead of at the next poll.
			if !checking {
				checking = true
				due = m.clock.Now().Add(m.cfg.CheckInterval)
			}
			continue
		}
		err := m.Refresh(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			checking = false
			due = m.clock.Now().Add(m.cfg.PollInterval)
			continue
		}
		if !checking {
			// First failure: start the health checks.
			checking = true
			due = m.clock.Now().Add(m.cfg.CheckInterval)
			continue
		}
		m.mu.Lock()
		if m.checks < m.cfg.MaxChecks {
			m.checks++
		}
		checks, incident := m.checks, m.incident
		m.mu.Unlock()
		if checks < m.cfg.MaxChecks {
			due = m.clock.Now().Add(m.cfg.CheckInterval)
			continue
		}
		if !incident {
			m.raiseIncident(err)
		}
		// The incident stands until an update succeeds; polling continues at the normal interval.
		due = m.clock.Now().Add(m.cfg.PollInterval)
	}
}

func (m *Manager) raiseIncident(cause error) {
	m.mu.Lock()
	m.incident = true
	m.mu.Unlock()
	m.metrics.incidents.Inc()
	s := m.snap.Load()
	var age time.Duration
	if s != nil {
		age = m.clock.Now().Sub(s.UpdatedAt)
	}
	in := m.incidents.raise(m.clock.Now(), cause)
	m.log.Error("VZD-FHIR-Directory: incident after failed health checks ("+in.Cause+")",
		"event", "vzd_incident", "cause", in.Cause, "checks", m.cfg.MaxChecks, "list_age", age.Round(time.Second).String(),
		"ttl_left", (m.cfg.TTL - age).Round(time.Second).String(), "error", cause.Error())
	m.notify("vzd_incident")
}

// notify posts the event to the webhook, if one is configured, without holding up the lifecycle.
func (m *Manager) notify(event string) {
	if m.cfg.IncidentWebhook == "" {
		return
	}
	h := m.Health()
	body, _ := json.Marshal(map[string]any{
		"event": event, "time": m.clock.Now().UTC().Format(time.RFC3339),
		"list_version": h.Version, "list_age_seconds": int64(h.Age / time.Second), "outdated": h.Outdated,
		"last_error": h.LastError,
	})
	go func() {
		resp, err := m.cfg.WebhookClient.Post(m.cfg.IncidentWebhook, "application/json", bytes.NewReader(body))
		if err != nil {
			m.metrics.webhookErrors.Inc()
			m.log.Error("incident webhook failed", "event", event, "error", err.Error())
			return
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			m.metrics.webhookErrors.Inc()
			m.log.Error("incident webhook refused the event", "event", event, "status", resp.StatusCode)
		}
	}()
}
