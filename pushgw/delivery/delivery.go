// Package delivery is the push gateway's queue: it holds accepted device
// notifications for their random privacy delay, sends them with a bounded
// number of concurrent calls per app, retries temporary provider failures
// with exponential back-off, remembers pushkeys the provider rejected, and on
// shutdown writes whatever is still undelivered to a spool file that the next
// start reloads.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/timfd/fachdienst/pushgw/metrics"
	"github.com/timfd/fachdienst/pushgw/push"
)

// ErrOverloaded means the queue is full; the homeserver should retry later.
var ErrOverloaded = errors.New("delivery: queue full")

// ErrClosed means the dispatcher is shutting down.
var ErrClosed = errors.New("delivery: shutting down")

// App is one configured app id and its provider.
type App struct {
	ID          string
	Sender      push.Sender
	Concurrency int // parallel provider calls; default 8
}

// Options tune the dispatcher. Zero values take the defaults noted.
type Options struct {
	Capacity       int           // accepted and unfinished notifications; default 10000
	MaxDelay       time.Duration // upper bound of the random delay; negative means none
	MaxAttempts    int           // provider calls per notification; default 5
	Backoff        time.Duration // first retry pause; default 1s
	MaxBackoff     time.Duration // cap of the pause; default 1m
	SendTimeout    time.Duration // one provider call; default 30s
	RejectCapacity int           // remembered rejected pushkeys; default 100000
	RejectTTL      time.Duration // how long a rejection is remembered; default 24h
	SpoolPath      string        // where Shutdown persists undelivered work; "" disables
	Clock          Clock
	Delay          func(max time.Duration) time.Duration // default RandomDelay
	Metrics        *metrics.Metrics
	Logger         *slog.Logger
}

// Job is one device notification. Its exported fields are what the spool
// file holds.
type Job struct {
	AppID   string      `json:"app_id"`
	Device  push.Device `json:"device"`
	Notice  push.Notice `json:"notice"`
	Attempt int         `json:"attempt"`

	id    uint64
	timer Timer
}

// appQueue holds an app's jobs whose delay has run out. The FIFO grows only
// with what is actually due (the capacity bound caps it); wake has one slot
// per worker so that a push never blocks.
type appQueue struct {
	app   App
	mu    sync.Mutex
	ready []*Job
	wake  chan struct{}
}

func (q *appQueue) push(j *Job) {
	q.mu.Lock()
	q.ready = append(q.ready, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // every worker already has a wake-up pending
	}
}

func (q *appQueue) pop() *Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) == 0 {
		return nil
	}
	j := q.ready[0]
	q.ready[0] = nil
	q.ready = q.ready[1:]
	if len(q.ready) == 0 {
		q.ready = nil // let the backing array go
	}
	return j
}

// Dispatcher delivers jobs.
type Dispatcher struct {
	opt     Options
	apps    map[string]*appQueue
	rejects *rejects
	m       *metrics.Metrics
	log     *slog.Logger

	mu      sync.Mutex
	pending map[uint64]*Job // the truth: every accepted, unfinished job
	nextID  uint64
	closing bool

	stop       chan struct{}
	sendCtx    context.Context
	cancelSend context.CancelFunc
	workers    sync.WaitGroup
}

// New starts the workers of every app.
func New(apps []App, opt Options) *Dispatcher {
	if opt.Capacity <= 0 {
		opt.Capacity = 10000
	}
	if opt.MaxDelay == 0 {
		opt.MaxDelay = 10 * time.Second
	}
	if opt.MaxDelay < 0 {
		opt.MaxDelay = 0
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 5
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = time.Minute
	}
	if opt.SendTimeout <= 0 {
		opt.SendTimeout = 30 * time.Second
	}
	if opt.RejectCapacity <= 0 {
		opt.RejectCapacity = 100000
	}
	if opt.RejectTTL <= 0 {
		opt.RejectTTL = 24 * time.Hour
	}
	if opt.Clock == nil {
		opt.Clock = realClock{}
	}
	if opt.Delay == nil {
		opt.Delay = RandomDelay
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		opt:     opt,
		apps:    map[string]*appQueue{},
		rejects: newRejects(opt.RejectCapacity, opt.RejectTTL, opt.Clock.Now),
		m:       opt.Metrics,
		log:     opt.Logger,
		pending: map[uint64]*Job{},
		stop:    make(chan struct{}),
	}
	d.sendCtx, d.cancelSend = context.WithCancel(context.Background())
	for _, a := range apps {
		if a.Concurrency <= 0 {
			a.Concurrency = 8
		}
		q := &appQueue{app: a, wake: make(chan struct{}, a.Concurrency)}
		d.apps[a.ID] = q
		for range a.Concurrency {
			d.workers.Add(1)
			go d.work(q)
		}
	}
	return d
}

// Sender returns the provider of an app id, false when it is not configured.
func (d *Dispatcher) Sender(appID string) (push.Sender, bool) {
	q, ok := d.apps[appID]
	if !ok {
		return nil, false
	}
	return q.app.Sender, true
}

// Rejected reports whether the provider refused this pushkey for good
// recently.
func (d *Dispatcher) Rejected(appID, pushKey string) bool {
	return d.rejects.has(appID, pushKey)
}

// Depth is the number of accepted, unfinished jobs.
func (d *Dispatcher) Depth() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Submit accepts all jobs or none: ErrOverloaded when they do not fit,
// ErrClosed during shutdown. Every accepted job waits its random delay first.
func (d *Dispatcher) Submit(jobs []Job) error {
	return d.submit(jobs, false)
}

func (d *Dispatcher) submit(jobs []Job, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return ErrClosed
	}
	if !force && len(d.pending)+len(jobs) > d.opt.Capacity {
		return ErrOverloaded
	}
	for i := range jobs {
		j := jobs[i]
		q, ok := d.apps[j.AppID]
		if !ok {
			d.drop(j.AppID, "unknown_app")
			continue
		}
		d.nextID++
		j.id = d.nextID
		d.pending[j.id] = &j
		if d.m != nil {
			d.m.Received.WithLabelValues(j.AppID).Inc()
		}
		delay := d.opt.Delay(d.opt.MaxDelay)
		if d.m != nil {
			d.m.Delay.Observe(delay.Seconds())
		}
		d.scheduleLocked(q, &j, delay)
	}
	d.gaugeLocked()
	return nil
}

func (d *Dispatcher) scheduleLocked(q *appQueue, j *Job, delay time.Duration) {
	j.timer = d.opt.Clock.AfterFunc(delay, func() { d.enqueue(q, j) })
}

func (d *Dispatcher) enqueue(q *appQueue, j *Job) {
	d.mu.Lock()
	closing := d.closing
	d.mu.Unlock()
	if closing {
		return // stays pending; Shutdown spools it
	}
	q.push(j)
}

func (d *Dispatcher) work(q *appQueue) {
	defer d.workers.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-q.wake:
		}
		// Drain until empty so that no job waits for a wake-up that was
		// merged into another one.
		for j := q.pop(); j != nil; j = q.pop() {
			d.deliver(q, j)
			select {
			case <-d.stop:
				return
			default:
			}
		}
	}
}

func (d *Dispatcher) deliver(q *appQueue, j *Job) {
	ctx, cancel := context.WithTimeout(d.sendCtx, d.opt.SendTimeout)
	start := time.Now()
	res := q.app.Sender.Send(ctx, j.Device, j.Notice)
	cancel()
	if d.m != nil {
		d.m.ProviderLatency.WithLabelValues(j.AppID).Observe(time.Since(start).Seconds())
	}
	log := d.log.With("app", j.AppID, "pushkey", push.Hash(j.Device.PushKey), "outcome", res.Outcome.String(), "reason", res.Reason, "attempt", j.Attempt+1)
	switch res.Outcome {
	case push.Sent:
		if d.m != nil {
			d.m.Sent.WithLabelValues(j.AppID).Inc()
		}
		log.Debug("push sent")
		d.finish(j)
	case push.Reject:
		d.rejects.add(j.AppID, j.Device.PushKey)
		if d.m != nil {
			d.m.Rejected.WithLabelValues(j.AppID, "provider").Inc()
		}
		log.Info("pushkey rejected by provider")
		d.finish(j)
	case push.Drop:
		log.Warn("push dropped")
		d.drop(j.AppID, res.Reason)
		d.finish(j)
	default:
		d.mu.Lock()
		if d.closing {
			// Cancelled by shutdown or failed meanwhile: it stays pending
			// and Shutdown spools it without counting an attempt.
			d.mu.Unlock()
			return
		}
		j.Attempt++
		if j.Attempt >= d.opt.MaxAttempts {
			delete(d.pending, j.id)
			d.gaugeLocked()
			d.mu.Unlock()
			log.Warn("push dropped after retries")
			d.drop(j.AppID, "retries_exhausted")
			return
		}
		defer d.mu.Unlock()
		if d.m != nil {
			d.m.Retried.WithLabelValues(j.AppID).Inc()
		}
		pause := max(res.RetryAfter, d.backoff(j.Attempt))
		log.Info("push retry scheduled", "pause_ms", pause.Milliseconds())
		d.scheduleLocked(q, j, pause)
	}
}

// backoff is exponential with jitter in [half, full] so that a provider
// outage does not end in a synchronized burst.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.opt.Backoff << min(attempt-1, 20)
	if b > d.opt.MaxBackoff || b <= 0 {
		b = d.opt.MaxBackoff
	}
	return b/2 + rand.N(b/2+1)
}

func (d *Dispatcher) drop(appID, reason string) {
	if d.m != nil {
		d.m.Dropped.WithLabelValues(appID, reason).Inc()
	}
}

func (d *Dispatcher) finish(j *Job) {
	d.mu.Lock()
	delete(d.pending, j.id)
	d.gaugeLocked()
	d.mu.Unlock()
}

func (d *Dispatcher) gaugeLocked() {
	if d.m != nil {
		d.m.QueueDepth.Set(float64(len(d.pending)))
	}
}

// Restore re-admits jobs read from the spool. They were accepted before, so
// the capacity bound does not turn them away; each waits a fresh random delay.
func (d *Dispatcher) Restore(jobs []Job) error {
	return d.submit(jobs, true)
}

// Shutdown stops accepting, lets calls in flight finish until ctx ends
// (then cancels them), and persists every unfinished job to the spool. It
// returns how many jobs were spooled. Without a spool path unfinished jobs
// are counted as dropped and an error is returned.
func (d *Dispatcher) Shutdown(ctx context.Context) (int, error) {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return 0, ErrClosed
	}
	d.closing = true
	for _, j := range d.pending {
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	d.mu.Unlock()

	close(d.stop)
	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		d.cancelSend()
		<-done
	}
	d.cancelSend()

	d.mu.Lock()
	left := make([]Job, 0, len(d.pending))
	for _, j := range d.pending {
		left = append(left, *j)
	}
	d.mu.Unlock()
	if len(left) == 0 {
		return 0, nil
	}
	if d.opt.SpoolPath == "" {
		for _, j := range left {
			d.drop(j.AppID, "shutdown")
		}
		return 0, errors.New("delivery: undelivered notifications and no spool configured")
	}
	if err := WriteSpool(d.opt.SpoolPath, left); err != nil {
		return 0, err
	}
	d.log.Info("undelivered notifications spooled", "count", len(left))
	return len(left), nil
}
