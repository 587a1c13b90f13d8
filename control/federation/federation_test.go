package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/internal/syncbuf"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

// scriptedVZD answers getFederationList from a stand-in's state without HTTP, and can be made to fail or
// to hang.
type scriptedVZD struct {
	sv *standin.Server

	mu       sync.Mutex
	fail     error
	garble   bool
	hang     chan struct{} // when set, calls block until it is closed or ctx ends
	calls    int
	versions []int64
}

func (s *scriptedVZD) FederationList(ctx context.Context, version int64) ([]byte, bool, error) {
	s.mu.Lock()
	s.calls++
	s.versions = append(s.versions, version)
	fail, garble, hang := s.fail, s.garble, s.hang
	s.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if fail != nil {
		return nil, false, fail
	}
	jws, v, err := s.sv.SignedList("BP256R1")
	if err != nil {
		return nil, false, err
	}
	if version >= v {
		return nil, true, nil
	}
	if garble {
		jws = append(bytes.Clone(jws[:len(jws)-8]), []byte("AAAAAAAA")...)
	}
	return jws, false, nil
}

func (s *scriptedVZD) set(f func(*scriptedVZD)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func (s *scriptedVZD) stats() (int, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, append([]int64(nil), s.versions...)
}

type env struct {
	vzd   *scriptedVZD
	sv    *standin.Server
	clock *federation.ManualClock
	store *federation.MemoryStore
	m     *federation.Manager
	logs  *syncbuf.Buffer
	ver   federation.Verifier
	cfg   federation.Config
}

func newEnv(t *testing.T, cfg federation.Config) *env {
	t.Helper()
	sv, err := standin.New(standin.WithDomains(
		standin.Domain{Domain: "a.example.de", TelematikID: "1-a"},
		standin.Domain{Domain: "b.example.de", TelematikID: "1-b"}))
	require.NoError(t, err)
	ts, err := fedlist.NewTrustStore(sv.TrustAnchorPEM())
	require.NoError(t, err)
	e := &env{vzd: &scriptedVZD{sv: sv}, sv: sv, clock: federation.NewManualClock(time.Now()),
		store: federation.NewMemoryStore(), logs: &syncbuf.Buffer{}, ver: federation.FedlistVerifier(ts), cfg: cfg}
	e.m = e.manager(t)
	return e
}

func (e *env) manager(t *testing.T) *federation.Manager {
	m, err := federation.New(e.cfg, e.vzd, e.ver, e.store, e.clock, slog.New(slog.NewJSONHandler(e.logs, nil)), nil)
	require.NoError(t, err)
	return m
}

// run starts the lifecycle and waits until it sleeps.
func (e *env) run(t *testing.T, m *federation.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.settle(t)
}

// advance moves the clock and waits until the lifecycle sleeps again.
func (e *env) advance(t *testing.T, d time.Duration) {
	t.Helper()
	e.clock.Advance(d)
	e.settle(t)
}

func (e *env) settle(t *testing.T) {
	t.Helper()
	require.True(t, e.clock.WaitForTimers(1, 5*time.Second), "lifecycle did not go back to sleep")
}

func TestHourlyPollSendsVersionAndPicksUpChanges(t *testing.T) {
	e := newEnv(t, federation.Config{})
	e.run(t, e.m)

	s := e.m.Current()
	require.NotNil(t, s)
	assert.Equal(t, int64(1), s.Version)
	assert.Equal(t, "1", s.VersionHeader)
	assert.Equal(t, 2, s.Domains)
	assert.Equal(t, 1, e.store.Saves())

	// An hour later: the VZD answers 204; the list is confirmed and its age starts again.
	e.advance(t, time.Hour)
	h := e.m.Health()
	assert.True(t, h.Healthy)
	assert.Equal(t, time.Duration(0), h.Age)
	assert.Equal(t, int64(1), e.m.Current().Version)

	e.sv.AddDomain(standin.Domain{Domain: "c.example.de", TelematikID: "1-c"})
	e.advance(t, 59*time.Minute)
	assert.Equal(t, int64(1), e.m.Current().Version, "not yet polled")
	e.advance(t, time.Minute)
	assert.Equal(t, int64(2), e.m.Current().Version)
	assert.Equal(t, 3, e.m.Current().Domains)

	calls, versions := e.vzd.stats()
	assert.Equal(t, 3, calls)
	assert.Equal(t, []int64{0, 1, 1}, versions, "the known version is sent with every poll")
	jws, v, _, err := e.store.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(2), v)
	assert.Equal(t, e.m.Current().JWS, jws)
}

func TestOutageRaisesIncidentThenOutdatedThenRecovers(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Event string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		events = append(events, ev.Event)
		mu.Unlock()
	}))
	defer hook.Close()
	hookEvents := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), events...)
	}

	e := newEnv(t, federation.Config{IncidentWebhook: hook.URL})
	e.run(t, e.m)
	e.vzd.set(func(s *scriptedVZD) { s.fail = errors.New("connection refused") })

	// The hourly poll fails: unhealthy, checks begin.
	e.advance(t, time.Hour)
	h := e.m.Health()
	assert.False(t, h.Healthy)
	assert.Equal(t, 0, h.Checks)
	assert.Contains(t, h.LastError, "connection refused")

	for i := 1; i <= 2; i++ {
		e.advance(t, 5*time.Minute)
		h = e.m.Health()
		assert.Equal(t, i, h.Checks)
		assert.False(t, h.IncidentActive, "no incident before the third check")
	}
	e.advance(t, 5*time.Minute)
	h = e.m.Health()
	assert.Equal(t, 3, h.Checks)
	assert.True(t, h.IncidentActive)
	assert.Contains(t, e.logs.String(), `"event":"vzd_incident"`)
	assert.Eventually(t, func() bool { return len(hookEvents()) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, []string{"vzd_incident"}, hookEvents())
	calls, _ := e.vzd.stats()
	assert.Equal(t, 5, calls, "initial fetch, hourly poll, three checks")

	// The list is still served until it is 72 h old.
	assert.False(t, e.m.Outdated(e.m.Current()))
	for range 70 {
		e.advance(t, time.Hour)
	}
	assert.False(t, e.m.Health().Outdated, "71 h 15 min old")
	e.advance(t, time.Hour)
	h = e.m.Health()
	assert.True(t, h.Outdated)
	assert.True(t, e.m.Outdated(e.m.Current()))
	assert.Equal(t, 3, h.Checks, "HealthStateCheck_VZD never exceeds 3")
	assert.Len(t, hookEvents(), 1, "one incident per outage")

	// Recovery: the next poll succeeds and the list is current again.
	e.vzd.set(func(s *scriptedVZD) { s.fail = nil })
	e.advance(t, time.Hour)
	h = e.m.Health()
	assert.True(t, h.Healthy)
	assert.False(t, h.Outdated)
	assert.False(t, h.IncidentActive)
	assert.Equal(t, 0, h.Checks)
	assert.Contains(t, e.logs.String(), `"event":"vzd_recovered"`)
	assert.Eventually(t, func() bool { return len(hookEvents()) == 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "vzd_recovered", hookEvents()[1])
}

func TestRecoveryDuringChecksRaisesNoIncident(t *testing.T) {
	e := newEnv(t, federation.Config{})
	e.run(t, e.m)
	e.vzd.set(func(s *scriptedVZD) { s.fail = errors.New("503") })
	e.advance(t, time.Hour)
	e.advance(t, 5*time.Minute)
	assert.Equal(t, 1, e.m.Health().Checks)
	e.vzd.set(func(s *scriptedVZD) { s.fail = nil })
	e.advance(t, 5*time.Minute)
	h := e.m.Health()
	assert.True(t, h.Healthy)
	assert.Equal(t, 0, h.Checks)
	assert.NotContains(t, e.logs.String(), "vzd_incident")
}

func TestInvalidListIsNotStored(t *testing.T) {
	e := newEnv(t, federation.Config{})
	e.run(t, e.m)
	before := e.m.Current()
	e.sv.AddDomain(standin.Domain{Domain: "c.example.de", TelematikID: "1-c"})
	e.vzd.set(func(s *scriptedVZD) { s.garble = true })
	e.advance(t, time.Hour)
	assert.Same(t, before, e.m.Current(), "the last good list stays")
	h := e.m.Health()
	assert.False(t, h.Healthy)
	assert.Contains(t, h.LastError, "list rejected")
	_, v, _, _ := e.store.Load(context.Background())
	assert.Equal(t, int64(1), v, "nothing unverified reaches the store")
}

func TestNoListYet(t *testing.T) {
	e := newEnv(t, federation.Config{})
	e.vzd.set(func(s *scriptedVZD) { s.fail = errors.New("down") })
	e.run(t, e.m)
	assert.Nil(t, e.m.Current())
	assert.True(t, e.m.Outdated(nil))
	assert.Nil(t, e.m.ForProxy(context.Background()))
}

func TestRestartRestoresLastGoodList(t *testing.T) {
	e := newEnv(t, federation.Config{})
	e.run(t, e.m)
	first := e.m.Current()

	// A new process (same store), 30 minutes later, with the VZD down.
	e.clock.Advance(30 * time.Minute)
	e.vzd.set(func(s *scriptedVZD) { s.fail = errors.New("down") })
	m2 := e.manager(t)
	require.NoError(t, m2.Load(context.Background()))
	s := m2.Current()
	require.NotNil(t, s)
	assert.Equal(t, first.Version, s.Version)
	assert.Equal(t, first.JWS, s.JWS)
	assert.Equal(t, 30*time.Minute, m2.Health().Age, "the age survives the restart")

	// A corrupted store is ignored rather than trusted.
	require.NoError(t, e.store.Save(context.Background(), []byte("garbage"), 9, e.clock.Now()))
	m3 := e.manager(t)
	require.NoError(t, m3.Load(context.Background()))
	assert.Nil(t, m3.Current())
}

func TestForProxyRefreshesOldListOnceWhenHealthy(t *testing.T) {
	e := newEnv(t, federation.Config{})
	ctx := context.Background()
	require.NoError(t, e.m.Refresh(ctx))

	// Younger than an hour: served as held.
	e.clock.Advance(59 * time.Minute)
	e.m.ForProxy(ctx)
	calls, _ := e.vzd.stats()
	assert.Equal(t, 1, calls)

	// Older than an hour: concurrent proxies share one VZD call.
	e.clock.Advance(2 * time.Minute)
	release := make(chan struct{})
	e.vzd.set(func(s *scriptedVZD) { s.hang = release })
	var wg sync.WaitGroup
	results := make([]*federation.Snapshot, 20)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = e.m.ForProxy(ctx) }()
	}
	require.Eventually(t, func() bool { c, _ := e.vzd.stats(); return c == 2 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	calls, _ = e.vzd.stats()
	assert.Equal(t, 2, calls, "single flight")
	for _, r := range results {
		require.NotNil(t, r)
		assert.Equal(t, e.clock.Now(), r.UpdatedAt, "confirmed by the refresh")
	}

	// Unhealthy VZD: no refresh on proxy requests, the held list is served.
	e.vzd.set(func(s *scriptedVZD) { s.hang = nil; s.fail = errors.New("down") })
	e.clock.Advance(2 * time.Hour)
	assert.NotNil(t, e.m.ForProxy(ctx))
	assert.False(t, e.m.Health().Healthy)
	assert.NotNil(t, e.m.ForProxy(ctx))
	calls, _ = e.vzd.stats()
	assert.Equal(t, 3, calls, "the failed refresh is not repeated per request")
}

func TestSlowVZDIsUnhealthy(t *testing.T) {
	e := newEnv(t, federation.Config{HealthTimeout: 20 * time.Millisecond})
	e.vzd.set(func(s *scriptedVZD) { s.hang = make(chan struct{}) })
	err := e.m.Refresh(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not answer in time")
	assert.False(t, e.m.Health().Healthy)
}

func TestFailedProxyRefreshStartsChecksEarly(t *testing.T) {
	e := newEnv(t, federation.Config{RefreshAge: 10 * time.Minute})
	e.run(t, e.m)
	e.vzd.set(func(s *scriptedVZD) { s.fail = errors.New("down") })

	// A proxy asks after 11 minutes: the refresh fails and the first check is due 5 minutes later, not at
	// the next hourly poll.
	e.clock.Advance(11 * time.Minute)
	require.NotNil(t, e.m.ForProxy(context.Background()))
	assert.False(t, e.m.Health().Healthy)
	// The lifecycle replaces its hourly timer by the check timer.
	checkAt := e.clock.Now().Add(5 * time.Minute)
	require.Eventually(t, func() bool { next, ok := e.clock.Next(); return ok && next.Equal(checkAt) }, 5*time.Second, time.Millisecond)
	e.advance(t, 5*time.Minute)
	calls, _ := e.vzd.stats()
	assert.Equal(t, 3, calls, "initial fetch, proxy refresh, first check")
	assert.Equal(t, 1, e.m.Health().Checks)
}

func TestMetricsExposeTable2(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, federation.Config{})
	m, err := federation.New(federation.Config{}, e.vzd, e.ver, e.store, e.clock, slog.New(slog.NewJSONHandler(e.logs, nil)), federation.NewMetrics(reg))
	require.NoError(t, err)
	e.run(t, m)
	e.vzd.set(func(s *scriptedVZD) { s.fail = errors.New("down") })
	e.advance(t, time.Hour)

	got := map[string]float64{}
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mt.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch {
			case mt.GetGauge() != nil:
				got[name] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				got[name] = mt.GetCounter().GetValue()
			}
		}
	}
	assert.Equal(t, map[string]float64{
		"tim_federation_vzd_healthy":           0,
		"tim_federation_vzd_health_checks":     0,
		"tim_federation_list_age_seconds":      3600,
		"tim_federation_list_outdated":         0,
		"tim_federation_list_version":          1,
		"tim_federation_incident_active":       0,
		"tim_federation_incidents_total":       0,
		"tim_federation_store_errors_total":    0,
		"tim_federation_webhook_errors_total":  0,
		"tim_federation_updates_total/updated": 1,
		"tim_federation_updates_total/failed":  1,
	}, got)
}
