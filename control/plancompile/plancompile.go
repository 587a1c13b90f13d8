// Package plancompile turns Rego policies into the OPA IR plan that the
// filter's plan VM evaluates. It refuses a policy that calls a builtin the VM
// does not implement, naming file, line and builtin, so that such a policy is
// rejected when the control plane loads it rather than failing on every
// request in the proxies.
package plancompile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/util"
)

// Result is one compiled policy.
type Result struct {
	// Plan is the IR plan JSON exactly as OPA's planner wrote it.
	Plan []byte
	// Entrypoints are the plan's entrypoints in plan order: the requested
	// ones plus any rule OPA plans alongside them.
	Entrypoints []string
	// Revision is a content hash of Plan ("sha256:<hex>"); equal plans have
	// equal revisions.
	Revision string
}

// BuiltinError reports a call of a builtin the plan VM does not implement.
type BuiltinError struct {
	File    string
	Line    int
	Builtin string
}

func (e *BuiltinError) Error() string {
	return fmt.Sprintf("%s:%d: builtin %q is not supported by the filter's plan VM", e.File, e.Line, e.Builtin)
}

// Compile compiles every .rego file under fsys except *_test.rego. Module
// names in errors are the paths within fsys.
func Compile(ctx context.Context, fsys fs.FS, entrypoints ...string) (*Result, error) {
	modules := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return nil
		}
		src, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		modules[path] = string(src)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	return CompileModules(ctx, modules, entrypoints...)
}

// CompileModules compiles the given Rego v1 modules (name -> source) for the
// given entrypoints ("tim/proxy/decision").
func CompileModules(ctx context.Context, modules map[string]string, entrypoints ...string) (*Result, error) {
	if len(entrypoints) == 0 {
		return nil, errors.New("no entrypoint given")
	}
	if len(modules) == 0 {
		return nil, errors.New("no policy modules")
	}
	names := util.KeysSorted(modules)
	parsed := make(map[string]*ast.Module, len(modules))
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		parsed[name] = m
	}
	caps := ast.CapabilitiesForThisVersion()
	compiler := ast.NewCompiler().WithCapabilities(caps)
	compiler.Compile(parsed)
	if compiler.Failed() {
		return nil, compiler.Errors
	}
	if err := checkBuiltins(compiler, caps, entrypoints, vmBuiltins()); err != nil {
		return nil, err
	}

	// The planner gets freshly parsed modules: the AST compiler above
	// rewrites the ones it was given.
	b := &bundle.Bundle{}
	b.SetRegoVersion(ast.RegoV1)
	b.Manifest.Init()
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: []byte(modules[name]), Parsed: m})
	}
	c := compile.New().
		WithTarget(compile.TargetPlan).
		WithRegoVersion(ast.RegoV1).
		WithEntrypoints(entrypoints...).
		WithBundle(b)
	if err := c.Build(ctx); err != nil {
		return nil, err
	}
	var plan []byte
	for _, pm := range c.Bundle().PlanModules {
		plan = pm.Raw
	}
	if plan == nil {
		return nil, errors.New("compiler produced no plan")
	}
	eps, err := planEntrypoints(plan)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(plan)
	return &Result{Plan: plan, Entrypoints: eps, Revision: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

func planEntrypoints(plan []byte) ([]string, error) {
	var p struct {
		Plans struct {
			Plans []struct {
				Name string `json:"name"`
			} `json:"plans"`
		} `json:"plans"`
	}
	if err := json.Unmarshal(plan, &p); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	out := make([]string, len(p.Plans.Plans))
	for i, pl := range p.Plans.Plans {
		out[i] = pl.Name
	}
	return out, nil
}

// checkBuiltins walks the compiled AST of every rule the plan can reach and
// reports each call of a builtin outside supported. Rules the entrypoints do
// not reach (the invite policy, evaluated natively) may use any builtin.
func checkBuiltins(compiler *ast.Compiler, caps *ast.Capabilities, entrypoints []string, supported map[string]bool) error {
	rules, err := reachableRules(compiler, entrypoints)
	if err != nil {
		return err
	}
	isBuiltin := make(map[string]bool, len(caps.Builtins))
	for _, b := range caps.Builtins {
		isBuiltin[b.Name] = true
	}
	var found []*BuiltinError
	seen := map[BuiltinError]bool{}
	report := func(name string, loc *ast.Location) {
		// Unification is planned as a statement of its own, not a call.
		if name == ast.Equality.Name || !isBuiltin[name] || supported[name] {
			return
		}
		e := BuiltinError{Builtin: name}
		if loc != nil {
			e.File, e.Line = loc.File, loc.Row
		}
		if !seen[e] {
			seen[e] = true
			found = append(found, &e)
		}
	}
	for _, r := range rules {
		ast.WalkExprs(r, func(x *ast.Expr) bool {
			if x.IsCall() {
				report(x.Operator().String(), x.Location)
			}
			for _, w := range x.With {
				// `with f as http.send` substitutes a builtin for a call.
				if ref, ok := w.Value.Value.(ast.Ref); ok && !ref.HasPrefix(ast.DefaultRootRef) && !ref.HasPrefix(ast.InputRootRef) {
					report(ref.String(), w.Location)
				}
			}
			return false
		})
		ast.WalkTerms(r, func(t *ast.Term) bool {
			if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
				report(call[0].String(), t.Location)
			}
			return false
		})
	}
	if len(found) == 0 {
		return nil
	}
	slices.SortFunc(found, func(a, b *BuiltinError) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Builtin, b.Builtin)
	})
	errs := make([]error, len(found))
	for i, e := range found {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// reachableRules returns the rules the planner plans for the entrypoints:
// the entrypoint rules, the rules that depend on them (OPA plans those as
// extra entrypoints), and everything these depend on.
func reachableRules(compiler *ast.Compiler, entrypoints []string) ([]*ast.Rule, error) {
	seen := map[*ast.Rule]bool{}
	var queue []*ast.Rule
	add := func(r *ast.Rule) {
		if !seen[r] {
			seen[r] = true
			queue = append(queue, r)
		}
	}
	for _, ep := range entrypoints {
		ref := ast.DefaultRootRef.Copy()
		for seg := range strings.SplitSeq(strings.Trim(ep, "/"), "/") {
			ref = append(ref, ast.StringTerm(seg))
		}
		rules := compiler.GetRules(ref)
		if len(rules) == 0 {
			return nil, fmt.Errorf("entrypoint %q does not refer to a rule", ep)
		}
		for _, r := range rules {
			add(r)
			addDependents(compiler, r, add, seen)
		}
	}
	for i := 0; i < len(queue); i++ {
		for dep := range compiler.Graph.Dependencies(queue[i]) {
			if r, ok := dep.(*ast.Rule); ok {
				add(r)
			}
		}
	}
	return queue, nil
}

func addDependents(compiler *ast.Compiler, r *ast.Rule, add func(*ast.Rule), seen map[*ast.Rule]bool) {
	for dep := range compiler.Graph.Dependents(r) {
		other, ok := dep.(*ast.Rule)
		if !ok || seen[other] {
			continue
		}
		add(other)
		addDependents(compiler, other, add, seen)
	}
}
