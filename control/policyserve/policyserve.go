// Package policyserve holds the policy revision the control plane hands to the messenger proxies: the
// proxy decision compiled to an OPA IR plan (control/plancompile) plus the policy data (policies/data.json
// merged with the operator's settings: approved client ids, exemptions, own domains, TI-M variant).
//
// Reload recompiles from the configured sources (a directory, or the policies embedded in the binary). A
// policy that does not compile, or data that do not parse, is refused with its error and the previous
// revision stays in service: a typo in a Rego file must never leave the proxies without a policy. Reload
// is triggered by SIGHUP (ReloadOnSIGHUP) and by POST /admin/v1/policy/reload (RegisterAdmin).
package policyserve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/timfd/fachdienst/control/plancompile"
	"github.com/timfd/fachdienst/control/policytest"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Compiler compiles the Rego modules of fsys for entrypoint; plancompile.Compile is the default.
type Compiler func(ctx context.Context, fsys fs.FS, entrypoints ...string) (*plancompile.Result, error)

// Operator is the provider's part of the policy data; it is merged into data.json's "config" object.
// Empty fields leave the defaults of data.json in place.
type Operator struct {
	Variant           string   `yaml:"variant" json:"variant"`                         // "basis", "pro" or "epa" (policies/invite.rego)
	OwnDomains        []string `yaml:"own_domains" json:"own_domains"`                 // the provider's Matrix domains
	ApprovedClientIDs []string `yaml:"approved_client_ids" json:"approved_client_ids"` // added to client_ids.approved
	EnforceClientIDs  *bool    `yaml:"enforce_client_ids" json:"enforce_client_ids"`   // client_ids.enforce
	// Exemptions are added to data.json's exemption index (exempt_paths, exempt_prefixes), e.g.
	// {"direction":"client","method":"GET","path":"/health"}; see docs/policy-contract.md.
	Exemptions []map[string]any `yaml:"exemptions" json:"exemptions"`
	// Messages override error texts by key (e.g. German texts of later gematik versions).
	Messages map[string]string `yaml:"messages" json:"messages"`
}

// Config configures a Server.
type Config struct {
	// Dir holds the Rego modules and data.json, in the layout of an OPA bundle directory (a .manifest
	// with a revision, *.rego with their _test.rego, data.json); empty uses the policies embedded in
	// the binary.
	Dir string
	// Bundle, when set, is an OPA bundle file (`opa build`, tar.gz) read instead of Dir.
	Bundle string
	// SkipTests accepts a revision without running its Rego tests (they run by default: a revision
	// whose own tests fail is refused).
	SkipTests bool
	// DataFile, when set, replaces Dir's (or the embedded) data.json.
	DataFile   string
	Entrypoint string // default tim/proxy/decision
	Operator   Operator
	// LoadOperator, when set, is called on every reload to re-read the operator settings.
	LoadOperator func() (Operator, error)
	// ExtraData, when set, is applied to the merged data document on every build, for data the
	// control plane keeps itself (the blocked users).
	ExtraData func(data []byte) ([]byte, error)
	Compile   Compiler
	Logger    *slog.Logger
	Now       func() time.Time
}

// Revision is one compiled policy with its data. It is immutable; Body is the precomputed answer of
// GET /internal/v1/policy.
type Revision struct {
	Revision    string          `json:"revision"`
	Plan        json.RawMessage `json:"plan"`
	Data        json.RawMessage `json:"data"`
	Entrypoints []string        `json:"-"`
	CompiledAt  time.Time       `json:"-"`
	Body        []byte          `json:"-"`
	// Manifest is the bundle's own revision (.manifest), Source what was read, Tests how many Rego
	// tests passed before it was accepted.
	Manifest string `json:"-"`
	Source   string `json:"-"`
	Tests    int    `json:"-"`
	// FS holds the sources it was compiled from (the invite policy is evaluated from the same reading).
	FS fs.FS `json:"-"`
}

// Server holds the current revision.
type Server struct {
	cfg     Config
	log     *slog.Logger
	current atomic.Pointer[Revision]
	mu      sync.Mutex // serialises reloads
	st      status
	// served is the body of GET /internal/v1/policy (publish); candidate the shadow candidate.
	served      atomic.Pointer[served]
	candidate   *Revision
	candidateAt time.Time
}

// New compiles the policy once; it fails when that first compilation fails, as there is nothing to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Entrypoint == "" {
		cfg.Entrypoint = policies.ProxyDecision
	}
	if cfg.Compile == nil {
		cfg.Compile = plancompile.Compile
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "policyserve")}
	if _, err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Current returns the revision in service (never nil after New succeeded).
func (s *Server) Current() *Revision { return s.current.Load() }

// Reload recompiles. On failure the previous revision stays current and the error is returned.
func (s *Server) Reload(ctx context.Context) (*Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, err := s.build(ctx)
	s.st.attempted(s.cfg.Now(), err)
	if err != nil {
		kept := ""
		if cur := s.current.Load(); cur != nil {
			kept = cur.Revision
		}
		s.log.Error("policy refused; previous revision kept", "event", "policy_reload_failed", "kept_revision", kept, "error", err.Error())
		return nil, err
	}
	prev := s.current.Swap(rev)
	if s.candidate != nil && s.candidate.Revision == rev.Revision {
		s.candidate = nil // the sources now hold the candidate: nothing is left to compare
	}
	s.publish()
	if prev == nil || prev.Revision != rev.Revision {
		s.log.Info("policy revision in service", "event", "policy_loaded", "revision", rev.Revision, "bundle_revision", rev.Manifest, "source", rev.Source, "tests", rev.Tests)
	}
	return rev, nil
}

func (s *Server) build(ctx context.Context) (*Revision, error) {
	src, err := s.readSource()
	if err != nil {
		return nil, err
	}
	return s.buildFrom(ctx, src, s.cfg.DataFile)
}

// buildFrom compiles, tests and merges one reading of the sources; dataFile, when set, replaces its
// data.json.
func (s *Server) buildFrom(ctx context.Context, src *source, dataFile string) (*Revision, error) {
	fsys := src.fsys
	res, err := s.cfg.Compile(ctx, fsys, s.cfg.Entrypoint)
	if err != nil {
		return nil, fmt.Errorf("policy: compile: %w", err)
	}
	if !json.Valid(res.Plan) {
		return nil, errors.New("policy: compiler returned a plan that is not JSON")
	}
	var raw []byte
	if dataFile != "" {
		raw, err = os.ReadFile(dataFile)
	} else {
		raw, err = fs.ReadFile(fsys, "data.json")
	}
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	tests := 0
	if !s.cfg.SkipTests {
		tr, err := policytest.Run(ctx, fsys, raw)
		if err != nil {
			return nil, fmt.Errorf("policy: tests: %w", err)
		}
		if err := tr.Err(); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		tests = tr.Passed
	}
	op := s.cfg.Operator
	if s.cfg.LoadOperator != nil {
		if op, err = s.cfg.LoadOperator(); err != nil {
			return nil, fmt.Errorf("policy: operator settings: %w", err)
		}
	}
	data, err := MergeData(raw, op)
	if err != nil {
		return nil, err
	}
	if s.cfg.ExtraData != nil {
		if data, err = s.cfg.ExtraData(data); err != nil {
			return nil, fmt.Errorf("policy: data: %w", err)
		}
	}
	h := sha256.New()
	h.Write([]byte(res.Revision))
	h.Write([]byte{0})
	h.Write(res.Plan)
	h.Write([]byte{0})
	h.Write(data)
	rev := &Revision{
		Revision:    hex.EncodeToString(h.Sum(nil)[:8]),
		Plan:        res.Plan,
		Data:        data,
		Entrypoints: res.Entrypoints,
		CompiledAt:  s.cfg.Now(),
		Manifest:    src.manifest,
		Source:      src.origin,
		Tests:       tests,
		FS:          fsys,
	}
	if rev.Body, err = json.Marshal(rev); err != nil {
		return nil, err
	}
	return rev, nil
}

// MergeData merges the operator settings into the default data document (data.json) and returns the
// result as compact JSON.
func MergeData(defaults []byte, op Operator) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(defaults, &doc); err != nil {
		return nil, fmt.Errorf("policy: data.json: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	cfg, err := object(doc, "config")
	if err != nil {
		return nil, err
	}
	if op.Variant != "" {
		if op.Variant != "basis" && op.Variant != "pro" && op.Variant != "epa" {
			return nil, fmt.Errorf("policy: variant %q: want basis, pro or epa", op.Variant)
		}
		cfg["variant"] = op.Variant
	}
	if len(op.OwnDomains) > 0 {
		own, err := object(cfg, "own_domains")
		if err != nil {
			return nil, err
		}
		for _, d := range op.OwnDomains {
			// Keyed by domain as the filter compares server names
			// (lower case, no port).
			dom, ok := matrix.ServerDomain(d)
			if !ok {
				return nil, fmt.Errorf("policy: own domain %q is not a server name", d)
			}
			own[dom] = true
		}
	}
	if len(op.ApprovedClientIDs) > 0 || op.EnforceClientIDs != nil {
		ci, err := object(cfg, "client_ids")
		if err != nil {
			return nil, err
		}
		if op.EnforceClientIDs != nil {
			ci["enforce"] = *op.EnforceClientIDs
		}
		approved, err := object(ci, "approved")
		if err != nil {
			return nil, err
		}
		for _, id := range op.ApprovedClientIDs {
			approved[id] = true
		}
	}
	// Exemptions in list form (a data file's "exemptions", then the operator's) are filed into the
	// lookup index the policy reads; the list itself is not served.
	var list []any
	switch v := cfg["exemptions"].(type) {
	case nil:
	case []any:
		list = v
	default:
		return nil, errors.New(`policy: data: "exemptions" is not an array`)
	}
	for _, e := range op.Exemptions {
		list = append(list, map[string]any(e))
	}
	if len(list) > 0 {
		if err := indexExemptions(cfg, list); err != nil {
			return nil, err
		}
	}
	delete(cfg, "exemptions")
	if len(op.Messages) > 0 {
		msgs, err := object(cfg, "messages")
		if err != nil {
			return nil, err
		}
		for k, v := range op.Messages {
			msgs[k] = v
		}
	}
	return json.Marshal(doc)
}

// object returns m[key] as an object, creating it when absent.
func object(m map[string]any, key string) (map[string]any, error) {
	switch v := m[key].(type) {
	case nil:
		o := map[string]any{}
		m[key] = o
		return o, nil
	case map[string]any:
		return v, nil
	default:
		return nil, fmt.Errorf("policy: data: %q is not an object", key)
	}
}

// ReloadOnSIGHUP reloads whenever the process receives SIGHUP, until ctx ends.
func (s *Server) ReloadOnSIGHUP(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				_, _ = s.Reload(ctx) // the outcome is logged by Reload
			}
		}
	}()
}

// RegisterAdmin mounts the operator's policy endpoints on r: GET /admin/v1/policy (status),
// POST /admin/v1/policy/test (compile and test the sources without using them), the shadow candidate
// (shadow.go) and POST /admin/v1/policy/reload. The caller puts it behind its admin
// authentication. reload, when not nil, replaces s.Reload — e.g. a server-wide reload that also refreshes
// the invite decisions — and must leave the previous revision in service when it fails. Answers: 200
// {"revision": "..."} when the new policy is in service, 422 {"error": "...", "revision": "<kept>"} when it
// was refused.
func (s *Server) RegisterAdmin(r gin.IRouter, reload func(context.Context) error, promote func(context.Context, *Revision) error) {
	if reload == nil {
		reload = func(ctx context.Context) error { _, err := s.Reload(ctx); return err }
	}
	s.registerStatus(r)
	s.registerShadow(r, promote)
	r.POST("/admin/v1/policy/reload", func(c *gin.Context) {
		if err := reload(c.Request.Context()); err != nil {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"error": err.Error(), "revision": s.Current().Revision})
			return
		}
		c.JSON(http.StatusOK, gin.H{"revision": s.Current().Revision})
	})
}
