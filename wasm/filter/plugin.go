// Package filter is the messenger-proxy filter of the TI-Messenger
// Fachdienst: a proxy-wasm HTTP filter that extracts the Matrix facts of each
// request (package matrix), evaluates the compiled proxy policy on them
// (package planvm) against the policy data and the verified federation list
// (package fedlist), and applies the decision: let the request through,
// answer it with a Matrix error, fetch a fresh federation list first, or ask
// the control plane about an invite.
//
// The filter keeps its state per VM (one per Envoy worker); the verified
// federation list and the policy are shared between VMs through proxy-wasm
// shared data, so one fetch from the control plane serves all of them.
package filter

import (
	"errors"
	"runtime"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/timfd/fachdienst/wasm/fedlist"
	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Entrypoint is the policy rule the filter evaluates.
const Entrypoint = "tim/proxy/decision"

// Paths of the control plane's internal API.
const (
	pathFederationList   = "/internal/v1/federation-list"
	pathPolicy           = "/internal/v1/policy"
	pathInvitePermission = "/internal/v1/invite-permission"
)

// Options adjust a VM context; the zero value is what production uses.
type Options struct {
	// Now is the clock; nil means time.Now. In the compiled module the clock
	// is the host's (WASI clock_time_get), which the tests' host controls.
	Now func() time.Time
}

// NewVMContext returns the filter's VM context for proxywasm.SetVMContext.
func NewVMContext(opts Options) types.VMContext {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &vmContext{opts: opts}
}

type vmContext struct {
	types.DefaultVMContext
	opts Options
}

func (v *vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return &plugin{id: contextID, opts: v.opts, memo: newMemo()}
}

// plugin is the root context: configuration, policy, federation list and
// the control-plane fetches.
type plugin struct {
	types.DefaultPluginContext
	id   uint32
	opts Options
	cfg  *Config
	m    *metrics
	// notReadyLogged is when a refusal for want of policy or list was last logged;
	// notReadyQuiet counts those refused since without a line (stream.notReady).
	notReadyLogged time.Time
	notReadyQuiet  int

	policy *Policy
	// eval evaluates policy.Program without allocating: its results are views valid until the next
	// evaluation, so a decision keeps nothing of them (parseDecision copies what it needs).
	eval *planvm.Evaluator
	// in is the storage of the policy input, reused by every request.
	in *inputStorage
	dl delegationVM
	// memo remembers decisions by input; cleared whenever data or policy
	// change (rebuildData).
	memo *memo
	// hosts keeps the last :authority's names (stream.fromValues).
	hosts hostCache
	// expiredAt is the last answer of expired.
	expiredAt expiredAnswer
	// exact is storage for the observations of an evaluation that used
	// the opaque strings in a way it did not record (stream.decide).
	exact []planvm.Observation
	list  *listState
	// router is the endpoint table of this listener from the policy data
	// (config.endpoints[direction]); nil without one: every path is unknown.
	router *matrix.Router
	// data is the policy's data document with federation.domains of the
	// current list; rebuilt when either changes, never per request.
	data planvm.Value

	// shadow is the candidate revision evaluated beside policy (shadow.go).
	shadow                        *shadowState
	shadowEvaluated, shadowDiffer proxywasm.MetricCounter
	shadowMetrics                 bool

	listFetch   fetchState
	policyFetch fetchState
	lastRefetch time.Time
	expiredLog  bool
	// clock is the last clock reading (now): requests use it instead of
	// reading the clock, ticks and fetches refresh it.
	clock time.Time

	// yieldCredit counts the work done since the last runtime.Gosched;
	// see yieldAfter.
	yieldCredit int

	// hdrs is the storage of the request headers' pairs, reused by every
	// request (see requestHeaders).
	hdrs [][2]string
	// free holds ended streams for reuse (see NewHttpContext).
	free []*stream
	// waiters are streams paused until the running list fetch ends.
	waiters []waiter
}

// listState is a verified federation list.
type listState struct {
	list        *fedlist.List
	jws         []byte
	confirmedAt time.Time // last time the control plane served or confirmed it
}

// fetchState makes a fetch single-flight: a fetch counts as running until
// its answer arrives or its lease runs out (the answer of a callout made on
// behalf of a stream is lost when that stream ends first).
type fetchState struct {
	until time.Time
	last  time.Time
}

func (f *fetchState) running(now time.Time) bool { return now.Before(f.until) }

// now reads the clock and remembers the reading in p.clock.
func (p *plugin) now() time.Time {
	p.clock = p.opts.Now().Round(0)
	return p.clock
}

// OnPluginStart validates the configuration, installs an inline policy and
// starts the fetches from the control plane.
func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	defer runtime.Gosched()
	raw, err := proxywasm.GetPluginConfiguration()
	if err != nil && len(raw) == 0 {
		proxywasm.LogCritical("tim-filter: invalid configuration: no plugin configuration")
		return types.OnPluginStartStatusFailed
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		proxywasm.LogCriticalf("tim-filter: invalid configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	p.m = defineMetrics()
	if cfg.Policy != nil {
		p.installPolicy(cfg.Policy, "configuration")
	}
	p.syncShared()
	tick := cfg.RefreshInterval
	if tick > time.Second {
		tick = time.Second
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(tick / time.Millisecond)); err != nil {
		proxywasm.LogCriticalf("tim-filter: cannot set the tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("tim-filter: started (role %s, fail mode %s)", cfg.Direction, failMode(cfg))
	p.refresh(true)
	return types.OnPluginStartStatusOK
}

func failMode(c *Config) string {
	if c.DryRun {
		return DryRun
	}
	return FailClosed
}

// OnTick adopts what other VMs fetched, refreshes list and policy when due
// and releases streams whose list fetch was lost.
func (p *plugin) OnTick() {
	defer runtime.Gosched()
	if p.cfg == nil {
		return
	}
	p.m.flush(p.memo)
	p.flushShadow()
	p.syncShared()
	p.refresh(false)
	now := p.now()
	if len(p.waiters) > 0 && !p.listFetch.running(now) {
		p.releaseWaiters()
	}
	p.checkExpiry(now)
}

// refresh starts the periodic fetches that are due. A VM still without a
// list or policy tries on every tick: the VM whose lease kept it from
// fetching may have been Envoy's canary (started on the main thread and
// discarded at once, its callouts never answered) or may have failed.
func (p *plugin) refresh(force bool) {
	now := p.now()
	if force || p.list == nil || now.Sub(p.listFetch.last) >= p.cfg.RefreshInterval {
		p.fetchList(now)
	}
	if force || p.policy == nil || now.Sub(p.policyFetch.last) >= p.cfg.RefreshInterval {
		p.fetchPolicy(now)
	}
}

// NewHttpContext reuses an ended stream when there is one: allocating the
// stream was a measurable part of the filter's own cost per request in Wasm.
// A reused stream carries a new id, and everything that acts on a stream
// later (callout answers, list waiters) checks the id it was started for, so
// that an answer for an ended request never touches the next one.
func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	var s *stream
	if n := len(p.free); n > 0 {
		s = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		s = new(stream)
	}
	*s = stream{id: contextID, p: p, headerBuf: s.headerBuf, bodyBuf: s.bodyBuf}
	return s
}

// maxFree bounds the streams kept for reuse (a VM serves one request at a
// time, plus those paused for a fetch or a callout); maxKeptBuf bounds
// each buffer one keeps (typical requests carry well under 2 KiB of headers,
// and the bodies the filter reads are smaller still).
const (
	maxFree    = 16
	maxKeptBuf = 8 << 10
)

// release keeps an ended stream for reuse. Its buffers are wiped: the
// request's headers (bearer tokens among them) and body do not outlive it,
// and a view of them kept past the request by mistake reads zeros, not
// another request's.
func (p *plugin) release(s *stream) {
	s.state = stateEnded
	s.headerBuf, s.bodyBuf = wipe(s.headerBuf), wipe(s.bodyBuf)
	if len(p.free) < maxFree {
		p.free = append(p.free, s)
	}
}

// wipe zeroes b and returns it for reuse, or nil when it is over maxKeptBuf.
func wipe(b []byte) []byte {
	clear(b)
	if cap(b) > maxKeptBuf {
		return nil
	}
	return b
}

// waiter is a stream paused for a list fetch, with the id it paused under.
type waiter struct {
	s  *stream
	id uint32
}

// Yield budget: a VM yields to the Go scheduler (which lets the GC's
// background work run) once the requests since the last yield reach
// yieldBudget units, a request counting 1 plus 1 per KiB of body it read.
// Yielding on every callback cost more than the rest of the filter's own
// work together; see docs/decisions/filter.md (F7).
const (
	yieldBudget  = 64
	yieldBodyKiB = 1024
)

// yieldAfter accounts for a finished request and yields when the budget is
// used up.
func (p *plugin) yieldAfter(s *stream) {
	p.yieldCredit += 1 + s.bodyBytes/yieldBodyKiB
	if p.yieldCredit >= yieldBudget {
		p.yieldCredit = 0
		runtime.Gosched()
	}
}

// ready reports whether the filter has what it needs to decide.
func (p *plugin) ready() bool { return p.policy != nil && p.list != nil }

// expired reports whether the federation list is older than the TTL. It is
// asked twice per request with the same clock reading (the last tick's), so
// the answer is kept for that reading and the list's confirmation: time's
// arithmetic is several calls in Wasm.
func (p *plugin) expired(now time.Time) bool {
	if p.list == nil {
		return false
	}
	c := &p.expiredAt
	if c.now != now || c.confirmed != p.list.confirmedAt {
		c.now, c.confirmed = now, p.list.confirmedAt
		c.expired = now.Sub(p.list.confirmedAt) > FederationListTTL
	}
	return c.expired
}

// expiredAnswer is expired's last answer and what it was for.
type expiredAnswer struct {
	now, confirmed time.Time
	expired        bool
}

// checkExpiry logs the incident once when the list expires.
func (p *plugin) checkExpiry(now time.Time) {
	exp := p.expired(now)
	if exp && !p.expiredLog {
		proxywasm.LogCriticalf("tim-filter: incident: federation list version %d not confirmed since %s (older than %s); federation is blocked",
			p.list.list.Version, p.list.confirmedAt.UTC().Format(time.RFC3339), FederationListTTL)
		p.m.listExpired.Increment(1)
	}
	p.expiredLog = exp
}

// rebuildData combines the policy data with federation.domains.
func (p *plugin) rebuildData() {
	if p.memo != nil {
		p.memo.clear()
	}
	if p.policy == nil {
		return
	}
	domains := planvm.NewObject()
	if p.list != nil {
		domains = domainsValue(p.list.list)
	}
	p.data = withDomains(p.policy.Data, domains)
	if p.shadow != nil {
		p.shadow.data = withDomains(p.shadow.pol.Data, domains)
	}
}

// withDomains is a policy data document with federation.domains set.
func withDomains(data, domains planvm.Value) planvm.Value {
	b := planvm.NewObjectBuilder(data.Len() + 1)
	data.Iterate(func(k, v planvm.Value) bool {
		if s, ok := k.AsString(); ok && s == "federation" {
			return true
		}
		b.SetValue(k, v)
		return true
	})
	b.Set("federation", planvm.NewObject(planvm.KV{Key: "domains", Value: domains}))
	return b.Stable()
}

var (
	entryInsurance = planvm.NewObject(planvm.KV{Key: "isInsurance", Value: planvm.Bool(true)})
	entryOther     = planvm.NewObject(planvm.KV{Key: "isInsurance", Value: planvm.Bool(false)})
)

// domainsValue turns the list into the object data.federation.domains, so
// that the policy looks a domain up by key.
func domainsValue(l *fedlist.List) planvm.Value {
	b := planvm.NewObjectBuilder(len(l.Domains))
	for d, e := range l.Domains {
		if e.IsInsurance {
			b.Set(d, entryInsurance)
		} else {
			b.Set(d, entryOther)
		}
	}
	return b.Stable()
}

func (p *plugin) installPolicy(pol *Policy, from string) {
	p.policy = pol
	p.eval = pol.Program.NewEvaluator()
	var err error
	if p.router, err = endpointRouter(pol.Data, p.cfg.Direction); err != nil {
		// Every path is then unknown: refused, or passed with a log line
		// where the operator lets unknown endpoints pass.
		proxywasm.LogErrorf("tim-filter: policy revision %q: endpoint table: %v", pol.Revision, err)
	}
	p.installShadow(pol)
	p.rebuildData()
	p.m.policyUpdates.Increment(1)
	setGauge(p.m.policyRevision, revisionGauge(pol.Revision))
	proxywasm.LogInfof("tim-filter: policy revision %q installed from %s", pol.Revision, from)
}

func (p *plugin) installList(l *fedlist.List, jws []byte, confirmed time.Time, from string) {
	p.list = &listState{list: l, jws: jws, confirmedAt: confirmed}
	p.rebuildData()
	p.m.listUpdates.Increment(1)
	proxywasm.LogInfof("tim-filter: federation list version %d (%d domains) installed from %s", l.Version, len(l.Domains), from)
	p.checkExpiry(p.now())
}

// releaseWaiters evaluates every stream that waited for a list fetch once
// more; a second miss is final.
func (p *plugin) releaseWaiters() {
	ws := p.waiters
	p.waiters = nil
	for _, w := range ws {
		s := w.s
		if s.id != w.id || s.state != stateWaitList {
			continue
		}
		if err := proxywasm.SetEffectiveContext(w.id); err != nil {
			continue
		}
		s.async = true
		s.decide(true)
	}
	_ = proxywasm.SetEffectiveContext(p.id)
}

// endpointRouter builds the router of data.config.endpoints[direction]: the
// templates are the keys (the policy looks the methods up itself).
func endpointRouter(data planvm.Value, direction string) (*matrix.Router, error) {
	cfg, _ := data.Get("config")
	eps, _ := cfg.Get("endpoints")
	table, ok := eps.Get(direction)
	if !ok {
		return nil, nil
	}
	if table.Kind() != planvm.KindObject {
		return nil, errors.New("config.endpoints." + direction + " is not an object")
	}
	templates := make([]string, 0, table.NumMembers())
	for i, n := 0, table.NumMembers(); i < n; i++ {
		k, _ := table.Member(i)
		t, _ := k.AsString()
		templates = append(templates, t)
	}
	return matrix.NewRouter(templates)
}
