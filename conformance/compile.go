package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"github.com/timfd/fachdienst/control/plancompile"
)

// CompilePlan compiles Rego modules (file name -> source) to an OPA IR plan
// (JSON) with the given entrypoints ("x/y") through the control plane's own
// compiler step, so that the VM sees exactly the plans it sees in production
// and a case using a builtin the VM lacks fails with plancompile's error.
func CompilePlan(ctx context.Context, modules map[string]string, entrypoints ...string) ([]byte, error) {
	res, err := plancompile.CompileModules(ctx, modules, entrypoints...)
	if err != nil {
		return nil, err
	}
	return res.Plan, nil
}

// PolicyModules reads the Rego modules of the policies/ directory (tests
// excluded), keyed by path relative to it.
func PolicyModules(fsys fs.FS) (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out[p] = string(b)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no Rego modules found")
	}
	return out, err
}

// PlanStats lists what a plan uses: the IR statement types (by their type
// name, e.g. "ScanStmt") and the functions called by CallStmt, each with the
// number of occurrences. It walks the plan JSON rather than OPA's ir types so
// that it sees exactly what the VM reads.
type PlanStats struct {
	Stmts map[string]int
	Calls map[string]int
}

// StatsOf walks a plan.
func StatsOf(plan []byte) (PlanStats, error) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(plan))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return PlanStats{}, err
	}
	st := PlanStats{Stmts: map[string]int{}, Calls: map[string]int{}}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["type"].(string); ok {
				if s, ok := x["stmt"].(map[string]any); ok {
					st.Stmts[t]++
					if t == "CallStmt" {
						if f, ok := s["func"].(string); ok {
							st.Calls[f]++
						}
					}
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return st, nil
}
