package delivery_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/metrics"
	"github.com/timfd/fachdienst/pushgw/push"
)

// fakeClock fires timers only when the test advances it.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	timers    []*fakeTimer
	requested []time.Duration
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func (t *fakeTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) delivery.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.requested = append(c.requested, d)
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.fired && !t.stopped && !t.at.After(c.now) {
			t.fired = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func (c *fakeClock) Requested() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.requested...)
}

// fakeSender answers from a script and records what it delivered.
type fakeSender struct {
	mu     sync.Mutex
	script func(key string, n int) push.Result
	calls  map[string]int
	sent   []push.Notice
	block  bool // wait for ctx (a provider that hangs)
}

func (s *fakeSender) Check(push.Device) error { return nil }

func (s *fakeSender) Send(ctx context.Context, d push.Device, n push.Notice) push.Result {
	if s.block {
		<-ctx.Done()
		return push.Result{Outcome: push.Retry, Reason: "network"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[d.PushKey]++
	res := push.Result{Outcome: push.Sent}
	if s.script != nil {
		res = s.script(d.PushKey, s.calls[d.PushKey])
	}
	if res.Outcome == push.Sent {
		s.sent = append(s.sent, n)
	}
	return res
}

func (s *fakeSender) Sent() []push.Notice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]push.Notice(nil), s.sent...)
}

func jobs(app string, n int, prefix string) []delivery.Job {
	out := make([]delivery.Job, n)
	for i := range out {
		out[i] = delivery.Job{AppID: app, Device: push.Device{AppID: app, PushKey: fmt.Sprintf("key-%s-%d", prefix, i)},
			Notice: push.Notice{EventID: fmt.Sprintf("$%s%d", prefix, i), RoomID: "!r:example.org"}}
	}
	return out
}

func newDispatcher(t *testing.T, s push.Sender, opt delivery.Options) (*delivery.Dispatcher, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	opt.Metrics = m
	d := delivery.New([]delivery.App{{ID: "app", Sender: s, Concurrency: 4}}, opt)
	t.Cleanup(func() { _, _ = d.Shutdown(context.Background()) })
	return d, m
}

func TestRandomDelayStaysWithinBounds(t *testing.T) {
	const max = 10 * time.Second
	var low, high bool
	for range 2000 {
		d := delivery.RandomDelay(max)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, max)
		low = low || d < time.Second
		high = high || d > 9*time.Second
	}
	require.True(t, low && high, "delays should spread over the whole range")
	require.Equal(t, time.Duration(0), delivery.RandomDelay(0))
	require.Equal(t, time.Duration(0), delivery.RandomDelay(-time.Second))
}

func TestNothingIsSentBeforeItsRandomDelay(t *testing.T) {
	clock := newFakeClock()
	s := &fakeSender{}
	d, m := newDispatcher(t, s, delivery.Options{MaxDelay: 10 * time.Second, Clock: clock})
	const n = 200
	require.NoError(t, d.Submit(jobs("app", n, "e")))
	delays := clock.Requested()
	require.Len(t, delays, n)
	for _, dl := range delays {
		require.GreaterOrEqual(t, dl, time.Duration(0))
		require.LessOrEqual(t, dl, 10*time.Second)
	}
	require.Empty(t, s.Sent())

	clock.Advance(5 * time.Second)
	due := 0
	for _, dl := range delays {
		if dl <= 5*time.Second {
			due++
		}
	}
	require.Eventually(t, func() bool { return len(s.Sent()) == due }, 5*time.Second, time.Millisecond)
	for _, sent := range s.Sent() {
		var i int
		_, _ = fmt.Sscanf(sent.EventID, "$e%d", &i)
		require.LessOrEqual(t, delays[i], 5*time.Second, "sent before its delay")
	}
	clock.Advance(5 * time.Second)
	require.Eventually(t, func() bool { return len(s.Sent()) == n }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return d.Depth() == 0 }, 5*time.Second, time.Millisecond)
	require.Equal(t, float64(n), value(m.Sent.WithLabelValues("app")))
	require.Equal(t, uint64(n), histCount(t, m.Delay))
}

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var pb = new(dtoMetric)
	require.NoError(t, h.Write(&pb.Metric))
	return pb.Metric.GetHistogram().GetSampleCount()
}

func TestProviderOutcomes(t *testing.T) {
	cases := []struct {
		name                          string
		script                        func(string, int) push.Result
		sent, retried, dropped, calls int
		rejected                      bool
	}{
		{"sent at once", nil, 1, 0, 0, 1, false},
		{"temporary twice then sent", func(_ string, n int) push.Result {
			if n <= 2 {
				return push.Result{Outcome: push.Retry, Reason: "status_503"}
			}
			return push.Result{Outcome: push.Sent}
		}, 1, 2, 0, 3, false},
		{"temporary until attempts run out", func(string, int) push.Result {
			return push.Result{Outcome: push.Retry, Reason: "status_429"}
		}, 0, 2, 1, 3, false},
		{"rejected pushkey", func(string, int) push.Result {
			return push.Result{Outcome: push.Reject, Reason: "Unregistered"}
		}, 0, 0, 0, 1, true},
		{"permanent failure", func(string, int) push.Result {
			return push.Result{Outcome: push.Drop, Reason: "status_403"}
		}, 0, 0, 1, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s := &fakeSender{script: tc.script}
			d, m := newDispatcher(t, s, delivery.Options{MaxDelay: -1, Clock: clock, MaxAttempts: 3, Backoff: time.Second, MaxBackoff: 4 * time.Second})
			require.NoError(t, d.Submit(jobs("app", 1, "o")))
			// Each step fires the one pending timer (pauses stay below 5s)
			// and waits until the worker either finished the job or asked
			// for the next pause.
			for d.Depth() > 0 {
				prev := len(clock.Requested())
				clock.Advance(5 * time.Second)
				require.Eventually(t, func() bool { return d.Depth() == 0 || len(clock.Requested()) > prev }, 5*time.Second, time.Millisecond)
			}
			require.Equal(t, float64(tc.sent), value(m.Sent.WithLabelValues("app")))
			require.Equal(t, float64(tc.retried), value(m.Retried.WithLabelValues("app")))
			require.Equal(t, tc.calls, s.calls["key-o-0"])
			require.Equal(t, tc.rejected, d.Rejected("app", "key-o-0"))
			dropped := 0.0
			for _, r := range []string{"retries_exhausted", "status_403"} {
				dropped += value(m.Dropped.WithLabelValues("app", r))
			}
			require.Equal(t, float64(tc.dropped), dropped)
			// Back-off pauses: first request is the zero delay, then the
			// jittered exponential pauses within [b/2, b].
			for i, p := range clock.Requested()[1:] {
				b := time.Second << i
				require.GreaterOrEqual(t, p, b/2)
				require.LessOrEqual(t, p, b)
			}
		})
	}
}

func TestRejectMemoryIsBoundedAndExpires(t *testing.T) {
	clock := newFakeClock()
	s := &fakeSender{script: func(string, int) push.Result { return push.Result{Outcome: push.Reject} }}
	d, _ := newDispatcher(t, s, delivery.Options{MaxDelay: -1, Clock: clock, RejectCapacity: 2, RejectTTL: time.Hour})
	require.NoError(t, d.Submit(jobs("app", 3, "r")))
	clock.Advance(0)
	require.Eventually(t, func() bool { return d.Depth() == 0 }, 5*time.Second, time.Millisecond)
	remembered := 0
	for i := range 3 {
		if d.Rejected("app", fmt.Sprintf("key-r-%d", i)) {
			remembered++
		}
	}
	require.Equal(t, 2, remembered, "capacity bounds the memory")
	require.False(t, d.Rejected("other-app", "key-r-2"), "keyed per app")
	clock.Advance(2 * time.Hour)
	for i := range 3 {
		require.False(t, d.Rejected("app", fmt.Sprintf("key-r-%d", i)), "expired after the TTL")
	}
}

func TestOverloadIsRefusedWhole(t *testing.T) {
	clock := newFakeClock()
	d, _ := newDispatcher(t, &fakeSender{}, delivery.Options{Capacity: 3, MaxDelay: 10 * time.Second, Clock: clock})
	require.NoError(t, d.Submit(jobs("app", 2, "a")))
	require.ErrorIs(t, d.Submit(jobs("app", 2, "b")), delivery.ErrOverloaded)
	require.Equal(t, 2, d.Depth())
	require.NoError(t, d.Submit(jobs("app", 1, "c")))
	require.Equal(t, 3, d.Depth())
}

func TestShutdownSpoolsEverythingAndReloadDeliversIt(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool.jsonl")
	clock := newFakeClock()
	waiting := &fakeSender{}
	hanging := &fakeSender{block: true}
	m := metrics.New(prometheus.NewRegistry())
	d := delivery.New([]delivery.App{
		{ID: "app", Sender: waiting, Concurrency: 2},
		{ID: "slow", Sender: hanging, Concurrency: 1},
	}, delivery.Options{MaxDelay: 10 * time.Second, Clock: clock, SpoolPath: spool, Metrics: m})
	want := append(jobs("app", 40, "w"), jobs("slow", 1, "s")...)
	require.NoError(t, d.Submit(want[:40]))
	// The slow app's job is due at once and hangs in the provider call.
	require.NoError(t, d.Submit(want[40:]))
	clock.Advance(0)
	for _, r := range clock.Requested()[40:] {
		clock.Advance(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n, err := d.Shutdown(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, d.Submit(jobs("app", 1, "late")), delivery.ErrClosed)
	delivered := len(waiting.Sent())
	require.Equal(t, len(want), n+delivered, "every accepted job is either delivered or spooled")
	info, err := os.Stat(spool)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// Next start: everything spooled is delivered, nothing twice.
	again := &fakeSender{}
	d2 := delivery.New([]delivery.App{{ID: "app", Sender: again}, {ID: "slow", Sender: again}}, delivery.Options{MaxDelay: -1})
	t.Cleanup(func() { _, _ = d2.Shutdown(context.Background()) })
	reloaded, err := delivery.Reload(d2, spool)
	require.NoError(t, err)
	require.Equal(t, n, reloaded)
	require.NoFileExists(t, spool)
	require.Eventually(t, func() bool { return len(again.Sent()) == n }, 5*time.Second, time.Millisecond)
	var got []string
	for _, s := range append(waiting.Sent(), again.Sent()...) {
		got = append(got, s.EventID)
	}
	var exp []string
	for _, j := range want {
		exp = append(exp, j.Notice.EventID)
	}
	sort.Strings(got)
	sort.Strings(exp)
	require.Equal(t, exp, got)
}

func TestReadSpoolRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spool")
	require.NoError(t, os.WriteFile(p, []byte("{\"app_id\":\"app\"}\nnot json\n"), 0o600))
	_, err := delivery.ReadSpool(p)
	require.ErrorContains(t, err, "line 2")
	jobs, err := delivery.ReadSpool(filepath.Join(t.TempDir(), "missing"))
	require.NoError(t, err)
	require.Empty(t, jobs)
}
