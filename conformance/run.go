package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Result is the outcome of one case.
type Result struct {
	Case Case
	Plan []byte // the compiled plan the VM evaluated (shared between cases)
	OPA  Outcome
	VM   Outcome
	// Problems is empty when the case passed. Each entry starts with the
	// kind: "corpus" (OPA disagrees with want), "vm" (the VM disagrees with
	// OPA), "compile" (the plan could not be built or loaded).
	Problems []string
}

// OK reports whether the case passed.
func (r Result) OK() bool { return len(r.Problems) == 0 }

// Report is the outcome of a corpus run.
type Report struct {
	Results []Result
}

// Mismatches counts the failed cases.
func (r Report) Mismatches() int {
	n := 0
	for _, res := range r.Results {
		if !res.OK() {
			n++
		}
	}
	return n
}

// Summary is the last line the conformance command prints.
func (r Report) Summary() string {
	return fmt.Sprintf("conformance: %d cases, %d mismatches", len(r.Results), r.Mismatches())
}

// Suite is a loaded corpus with the policies/ modules its policy cases use.
type Suite struct {
	Cases          []Case
	PolicyModules  map[string]string
	PolicyDataJSON []byte
}

// LoadSuite loads conformance/testdata and policies/ below the repository
// root.
func LoadSuite(root string) (*Suite, error) {
	s := &Suite{}
	pdir := filepath.Join(root, "policies")
	if mods, err := PolicyModules(os.DirFS(pdir)); err == nil {
		s.PolicyModules = mods
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("policies: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(pdir, "data.json")); err == nil {
		s.PolicyDataJSON = b
	}
	cases, err := LoadCorpus(os.DirFS(filepath.Join(root, "conformance", "testdata")), s.PolicyDataJSON)
	if err != nil {
		return nil, err
	}
	s.Cases = cases
	return s, nil
}

// Run evaluates every case of the suite with OPA and the VM.
func Run(ctx context.Context, s *Suite) Report {
	plans := s.compileAll(ctx)
	rep := Report{Results: make([]Result, 0, len(s.Cases))}
	for _, c := range s.Cases {
		rep.Results = append(rep.Results, s.runCase(ctx, c, plans))
	}
	return rep
}

type compiled struct {
	plan []byte
	prog *VMProgram
	err  error
}

// modulesOf returns the modules of a case and a key identifying them.
func (s *Suite) modulesOf(c Case) (map[string]string, string) {
	mods := c.Modules
	if c.Policies {
		mods = s.PolicyModules
	}
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%q\x00%q\x00", n, mods[n])
	}
	return mods, hex.EncodeToString(h.Sum(nil))
}

// compileAll compiles one plan per distinct module set, with every
// entrypoint the cases over that set use, as the control plane compiles one
// plan for several entrypoints.
func (s *Suite) compileAll(ctx context.Context) map[string]*compiled {
	entries := map[string]map[string]bool{}
	mods := map[string]map[string]string{}
	for _, c := range s.Cases {
		m, key := s.modulesOf(c)
		if entries[key] == nil {
			entries[key] = map[string]bool{}
		}
		entries[key][c.Entrypoint] = true
		mods[key] = m
	}
	out := map[string]*compiled{}
	for key, eps := range entries {
		list := make([]string, 0, len(eps))
		for e := range eps {
			list = append(list, e)
		}
		sort.Strings(list)
		cp := &compiled{}
		if len(mods[key]) == 0 {
			cp.err = fmt.Errorf("no modules (policies/ missing?)")
		} else {
			cp.plan, cp.err = CompilePlan(ctx, mods[key], list...)
		}
		if cp.err == nil {
			cp.prog, cp.err = LoadVM(cp.plan)
			if cp.err != nil {
				cp.err = fmt.Errorf("VM load: %w", cp.err)
			}
		}
		out[key] = cp
	}
	return out
}

func (s *Suite) runCase(ctx context.Context, c Case, plans map[string]*compiled) Result {
	mods, key := s.modulesOf(c)
	r := Result{Case: c}
	q, err := PrepareOPA(ctx, mods, c.Entrypoint, c.Data)
	if err != nil {
		r.OPA = Outcome{Err: err}
	} else {
		r.OPA = q.Eval(ctx, c.Input)
	}
	r.Problems = append(r.Problems, checkWant(c.Want, r.OPA)...)

	cp := plans[key]
	r.Plan = cp.plan
	if cp.err != nil {
		r.Problems = append(r.Problems, "compile: "+cp.err.Error())
		return r
	}
	r.VM = cp.prog.EvalJSON(c.Entrypoint, c.Input, c.Data)
	if d := Diff(r.OPA, r.VM); d != "" {
		r.Problems = append(r.Problems, "vm: "+d)
	}
	return r
}

func checkWant(w Want, o Outcome) []string {
	switch {
	case w.Error:
		if o.Err == nil {
			return []string{"corpus: want an error, OPA gave " + o.String()}
		}
		return nil
	case o.Err != nil:
		return []string{"corpus: OPA failed: " + o.Err.Error()}
	case w.Defined != o.Defined:
		return []string{fmt.Sprintf("corpus: want defined=%v, OPA gave %s", w.Defined, o)}
	case w.Defined:
		eq, err := EqualJSON(w.Result, o.Result)
		if err != nil {
			return []string{"corpus: " + err.Error()}
		}
		if !eq {
			return []string{fmt.Sprintf("corpus: want %s, OPA gave %s", w.Result, o.Result)}
		}
	}
	return nil
}

// Diff describes how the VM's outcome differs from OPA's, or returns "" when
// they agree. Two errors agree whatever their texts (both deny).
func Diff(opa, vm Outcome) string {
	switch {
	case opa.Err != nil && vm.Err != nil:
		return ""
	case opa.Err != nil || vm.Err != nil || opa.Defined != vm.Defined:
		return fmt.Sprintf("OPA %s, VM %s", opa, vm)
	case !opa.Defined:
		return ""
	}
	eq, err := EqualJSON(opa.Result, vm.Result)
	if err != nil {
		return fmt.Sprintf("OPA %s, VM %s: %v", opa, vm, err)
	}
	if !eq {
		return fmt.Sprintf("OPA %s, VM %s", opa, vm)
	}
	return ""
}

// Line is the one-line description of a failed case the command prints.
func (r Result) Line() string {
	msg := strings.Join(r.Problems, "; ")
	return fmt.Sprintf("MISMATCH %s (%s): %s", r.Case.Name, r.Case.File, strings.ReplaceAll(msg, "\n", " | "))
}
