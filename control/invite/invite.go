// Package invite decides whether an invite may pass the messenger proxy at stages 2 and 3
// (gemSpec_TI-Messenger-FD 5.1.2.1.8.2.2-3 and 5.1.1.1.7).
//
// Go gathers the facts, Rego decides: the Decider looks up the invitee's release list, in TI-M
// Pro/ePA the invitee's permission configuration, and - only when the policy reaches stage 3 without
// them - the VZD's whereIs answer for both MXIDs. The decision itself is data.tim.invite.decision
// of the policies (package tim.invite), evaluated natively with OPA from a query prepared once per
// policy revision. Whatever cannot be looked up denies: an unreachable VZD, release list or
// homeserver never lets an invite through.
package invite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/timfd/fachdienst/control/redact"
	"github.com/timfd/fachdienst/control/ttlcache"
	"github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Decision is the answer to the proxy: {"allow", "stage", "reason"}.
type Decision struct {
	Allow  bool   `json:"allow"`
	Stage  int    `json:"stage"`
	Reason string `json:"reason"`
}

// ErrInvalidInput wraps errors about MXIDs that are not MXIDs; the caller answers 400.
var ErrInvalidInput = errors.New("invite: invalid input")

// ReleaseChecker answers stage 2; *store.Store implements it.
type ReleaseChecker interface {
	IsReleased(ctx context.Context, owner, contact string, at time.Time) (bool, error)
}

// Localizer answers VZD whereIs for one MXID; *vzd.Client implements it.
type Localizer interface {
	Localize(ctx context.Context, mxid string) (vzd.Result, error)
}

// PermissionSource returns a user's TI-M permission configuration (permissionConfig_V1) as stored
// in the homeserver's account data, or nil when the user has none.
type PermissionSource interface {
	PermissionConfig(ctx context.Context, mxid, variant string) (map[string]any, error)
}

// InsuranceLookup reports whether a domain is flagged isInsurance in the federation list.
type InsuranceLookup interface {
	IsInsurance(domain string) bool
}

// Options configure a Decider. Releases and Localizer are required.
type Options struct {
	Releases    ReleaseChecker
	Localizer   Localizer
	Permissions PermissionSource // nil: no permission configuration is read
	Insurance   InsuranceLookup  // nil: no domain counts as insurance
	CacheSize   int              // whereIs answers kept (default 100 000)
	CacheTTL    time.Duration    // how long a whereIs answer is kept (default 10 min)
	Timeout     time.Duration    // bound for one decision's lookups (default 3 s)
	Now         func() time.Time
	Logger      *slog.Logger
	Registerer  prometheus.Registerer // nil: metrics are kept but not registered
}

// Decider evaluates invite permissions. Safe for concurrent use.
type Decider struct {
	o       Options
	query   atomic.Pointer[policy]
	cache   *ttlcache.Cache[string, vzd.Result]
	flights singleflight.Group

	decisions *prometheus.CounterVec
	lookups   *prometheus.CounterVec
}

type policy struct {
	query   rego.PreparedEvalQuery
	variant string
}

// Query is the policy's entrypoint.
const Query = "data.tim.invite.decision"

// New prepares the invite policy from the Rego modules in fsys (test files excluded) and the policy
// data document data (JSON; nil for none).
func New(ctx context.Context, o Options, fsys fs.FS, data []byte) (*Decider, error) {
	if o.Releases == nil || o.Localizer == nil {
		return nil, errors.New("invite: release checker and localizer are required")
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	d := &Decider{
		o:     o,
		cache: ttlcache.New[string, vzd.Result](o.CacheSize, o.CacheTTL),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_invite_decisions_total", Help: "Invite-permission decisions by stage and outcome.",
		}, []string{"stage", "allow"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_invite_vzd_lookups_total", Help: "VZD whereIs lookups for stage 3: cache hits, VZD calls and failures.",
		}, []string{"result"}),
	}
	d.cache.SetClock(o.Now)
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{d.decisions, d.lookups} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("invite: metrics: %w", err)
			}
		}
	}
	if err := d.SetPolicy(ctx, fsys, data); err != nil {
		return nil, err
	}
	return d, nil
}

// SetPolicy prepares a new policy revision and puts it in service; on error the previous one stays.
func (d *Decider) SetPolicy(ctx context.Context, fsys fs.FS, data []byte) error {
	opts := []func(*rego.Rego){rego.Query(Query)}
	n := 0
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || path.Ext(p) != ".rego" || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		opts = append(opts, rego.Module(p, string(src)))
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("invite: policy: %w", err)
	}
	if n == 0 {
		return errors.New("invite: policy: no Rego modules")
	}
	doc := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("invite: policy data: %w", err)
		}
	}
	opts = append(opts, rego.Store(inmem.NewFromObject(doc)))
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return fmt.Errorf("invite: policy: %w", err)
	}
	variant := ""
	if cfg, ok := doc["config"].(map[string]any); ok {
		variant, _ = cfg["variant"].(string)
	}
	d.query.Store(&policy{query: pq, variant: variant})
	return nil
}

// Decide answers whether inviter may invite invitee. Lookup failures give a deny with a reason
// and a nil error; only MXIDs that are not MXIDs give an error (wrapping ErrInvalidInput).
func (d *Decider) Decide(ctx context.Context, inviter, invitee string) (Decision, error) {
	// Domains as the filter compares them (matrix.UserDomain): lower-cased,
	// without port, so that "kasse.de:8448" is the insured domain "kasse.de".
	inviterDomain, ok1 := matrix.UserDomain(inviter)
	inviteeDomain, ok2 := matrix.UserDomain(invitee)
	if !ok1 || !ok2 {
		return Decision{Stage: 2, Reason: "invalid MXID"}, fmt.Errorf("%w: inviter and invitee must be MXIDs", ErrInvalidInput)
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	pol := d.query.Load()

	in := map[string]any{
		"inviter":              inviter,
		"invitee":              invitee,
		"inviter_domain":       inviterDomain,
		"invitee_domain":       inviteeDomain,
		"inviter_is_insurance": d.o.Insurance != nil && d.o.Insurance.IsInsurance(inviterDomain),
		"invitee_is_insurance": d.o.Insurance != nil && d.o.Insurance.IsInsurance(inviteeDomain),
	}
	// Stage 2: the invitee's release list must name the inviter with a window open now.
	released, err := d.o.Releases.IsReleased(ctx, invitee, inviter, d.o.Now())
	if err != nil {
		return d.deny(2, "release list unavailable", err), nil
	}
	in["release_list_hit"] = released
	if !released && d.o.Permissions != nil && (pol.variant == "pro" || pol.variant == "epa") {
		pc, err := d.o.Permissions.PermissionConfig(ctx, invitee, pol.variant)
		if err != nil {
			return d.deny(2, "permission configuration unavailable", err), nil
		}
		if pc != nil {
			in["permission_config"] = pc
		}
	}
	// Whereis answers already cached go in at once: the policy reads them only at stage 3, and a
	// warm cache then needs a single evaluation.
	inviterLoc, ok1 := d.cache.Get(inviter)
	inviteeLoc, ok2 := d.cache.Get(invitee)
	if ok1 && ok2 {
		d.lookups.WithLabelValues("cache").Add(2)
		in["vzd"] = map[string]any{"inviter": string(inviterLoc), "invitee": string(inviteeLoc)}
	}
	dec, err := d.eval(ctx, pol, in)
	if err != nil {
		return d.deny(2, "policy evaluation failed", err), nil
	}
	if _, known := in["vzd"]; dec.Stage == 3 && !known {
		// The policy went on to stage 3: look both MXIDs up in the VZD and ask again.
		var inviterLoc, inviteeLoc vzd.Result
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { inviterLoc, err = d.localize(gctx, inviter); return })
		g.Go(func() (err error) { inviteeLoc, err = d.localize(gctx, invitee); return })
		if err := g.Wait(); err != nil {
			return d.deny(3, "VZD unreachable: directory entries could not be checked", err), nil
		}
		in["vzd"] = map[string]any{"inviter": string(inviterLoc), "invitee": string(inviteeLoc)}
		if dec, err = d.eval(ctx, pol, in); err != nil {
			return d.deny(3, "policy evaluation failed", err), nil
		}
	}
	d.count(dec)
	return dec, nil
}

func (d *Decider) eval(ctx context.Context, pol *policy, in map[string]any) (Decision, error) {
	rs, err := pol.query.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return Decision{}, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, errors.New("policy gave no decision")
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, errors.New("policy decision is not an object")
	}
	allow, ok1 := obj["allow"].(bool)
	stage, ok2 := obj["stage"].(json.Number)
	reason, _ := obj["reason"].(string)
	st, err := stage.Int64()
	if !ok1 || !ok2 || err != nil || (st != 2 && st != 3) {
		return Decision{}, fmt.Errorf("policy decision %v does not have the contract's shape", obj)
	}
	return Decision{Allow: allow, Stage: int(st), Reason: reason}, nil
}

// localize answers whereIs from the cache or the VZD; concurrent misses for one MXID share one call.
func (d *Decider) localize(ctx context.Context, mxid string) (vzd.Result, error) {
	if r, ok := d.cache.Get(mxid); ok {
		d.lookups.WithLabelValues("cache").Inc()
		return r, nil
	}
	ch := d.flights.DoChan(mxid, func() (any, error) {
		// The call is shared: one waiter giving up must not fail the others, so it runs on its own
		// deadline rather than the first caller's context.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.Timeout)
		defer cancel()
		r, err := d.o.Localizer.Localize(lctx, mxid)
		if err != nil {
			return nil, err
		}
		switch r {
		case vzd.Org, vzd.Pract, vzd.OrgPract, vzd.None:
		default:
			return nil, fmt.Errorf("unknown whereIs answer %q", r)
		}
		d.cache.Put(mxid, r)
		return r, nil
	})
	var (
		v   any
		err error
	)
	select {
	case res := <-ch:
		v, err = res.Val, res.Err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		d.lookups.WithLabelValues("error").Inc()
		return "", err
	}
	d.lookups.WithLabelValues("vzd").Inc()
	return v.(vzd.Result), nil
}

func (d *Decider) deny(stage int, reason string, err error) Decision {
	d.o.Logger.Warn("invite permission denied: lookup failed", "stage", stage, "reason", reason, "error", scrub(err))
	dec := Decision{Allow: false, Stage: stage, Reason: reason}
	d.count(dec)
	return dec
}

func (d *Decider) count(dec Decision) {
	d.decisions.WithLabelValues(fmt.Sprint(dec.Stage), fmt.Sprint(dec.Allow)).Inc()
}

// scrub keeps error texts out of the log when they could carry an MXID: only the error's type and
// a hash of its text are logged.
func scrub(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err.Error()
	}
	return fmt.Sprintf("%T#%s", err, redact.ID(err.Error()))
}
