package conformance

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/timfd/fachdienst/wasm/planvm"
)

var (
	suiteOnce   sync.Once
	suiteReport Report
	suiteErr    error
	loaded      *Suite
)

// corpus runs the whole corpus once per test binary; the tests below read the
// shared report.
func corpus(t *testing.T) (*Suite, Report) {
	t.Helper()
	suiteOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			suiteErr = err
			return
		}
		loaded, suiteErr = LoadSuite(root)
		if suiteErr == nil {
			suiteReport = Run(context.Background(), loaded)
		}
	})
	if suiteErr != nil {
		t.Fatal(suiteErr)
	}
	return loaded, suiteReport
}

func TestCorpus(t *testing.T) {
	_, rep := corpus(t)
	for _, r := range rep.Results {
		t.Run(r.Case.Name, func(t *testing.T) {
			for _, p := range r.Problems {
				t.Error(p)
			}
		})
	}
}

func TestCorpusSize(t *testing.T) {
	s, _ := corpus(t)
	policy := 0
	for _, c := range s.Cases {
		if c.Policies {
			policy++
		}
	}
	if len(s.Cases)-policy < 150 {
		t.Errorf("%d language cases, want at least 150", len(s.Cases)-policy)
	}
	if s.PolicyModules != nil && policy == 0 {
		t.Error("policies/ exists but no case evaluates it")
	}
}

// notEmitted are IR statement types OPA's planner (v1.22) never emits; no
// Rego can produce them, so the coverage check leaves them out.
var notEmitted = map[string]bool{"NopStmt": true}

// allStmts is every statement type of OPA's IR (v1/ir/ir.go).
var allStmts = []string{
	"ReturnLocalStmt", "CallStmt", "CallDynamicStmt", "BlockStmt", "BreakStmt",
	"DotStmt", "LenStmt", "ScanStmt", "NotStmt", "AssignIntStmt", "AssignVarStmt",
	"AssignVarOnceStmt", "ResetLocalStmt", "MakeNullStmt", "MakeNumberIntStmt",
	"MakeNumberRefStmt", "MakeArrayStmt", "MakeObjectStmt", "MakeSetStmt",
	"EqualStmt", "NotEqualStmt", "IsArrayStmt", "IsObjectStmt", "IsSetStmt",
	"IsDefinedStmt", "IsUndefinedStmt", "ArrayAppendStmt", "ObjectInsertStmt",
	"ObjectInsertOnceStmt", "ObjectMergeStmt", "SetAddStmt", "WithStmt",
	"NopStmt", "ResultSetAddStmt",
}

func corpusStats(t *testing.T) PlanStats {
	_, rep := corpus(t)
	total := PlanStats{Stmts: map[string]int{}, Calls: map[string]int{}}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Plan == nil || seen[string(r.Plan)] {
			continue
		}
		seen[string(r.Plan)] = true
		st, err := StatsOf(r.Plan)
		if err != nil {
			t.Fatalf("%s: %v", r.Case.Name, err)
		}
		for k, v := range st.Stmts {
			total.Stmts[k] += v
		}
		for k, v := range st.Calls {
			total.Calls[k] += v
		}
	}
	return total
}

// TestStatementCoverage asserts that the corpus makes the planner emit every
// IR statement type, so that every VM instruction is checked against OPA.
func TestStatementCoverage(t *testing.T) {
	st := corpusStats(t)
	known := map[string]bool{}
	for _, s := range allStmts {
		known[s] = true
		if !notEmitted[s] && st.Stmts[s] == 0 {
			t.Errorf("no corpus plan contains %s", s)
		}
	}
	for s := range st.Stmts {
		if !known[s] {
			t.Errorf("plans contain %s, which this test does not know: add it to allStmts", s)
		}
	}
}

// TestBuiltinCoverage asserts that every builtin the VM implements is called
// by at least one corpus plan.
func TestBuiltinCoverage(t *testing.T) {
	st := corpusStats(t)
	var missing []string
	for _, b := range planvm.Builtins() {
		if st.Calls[b] == 0 {
			missing = append(missing, b)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("builtins of the VM that no corpus case calls: %s", strings.Join(missing, ", "))
	}
}
