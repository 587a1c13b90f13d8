// Package policytest runs the Rego unit tests (`test_` rules) of a policy bundle with OPA's tester, as
// `opa test` does: every .rego module of the bundle (tests included) compiled in strict mode, the
// tests evaluated against the bundle's data document. The control plane runs them before it accepts a
// policy revision; policies/policies_test.go runs them in `go test`.
package policytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Result is the outcome of one run.
type Result struct {
	Passed int      `json:"passed"`
	Failed []string `json:"failed,omitempty"` // "<package>.<rule> (<file:line>): FAIL|error: ..."
}

// Err is nil when every test passed, else an error naming the failures (at most five).
func (r Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	shown := r.Failed
	if len(shown) > 5 {
		shown = shown[:5]
	}
	more := ""
	if n := len(r.Failed) - len(shown); n > 0 {
		more = fmt.Sprintf("; and %d more", n)
	}
	return fmt.Errorf("%d of %d Rego tests failed: %s%s", len(r.Failed), len(r.Failed)+r.Passed, strings.Join(shown, "; "), more)
}

// Run compiles every .rego file of fsys (walked recursively) and runs its tests against data (a JSON
// object; nil for none). A module that does not parse or compile is an error; failing tests are in
// the Result.
func Run(ctx context.Context, fsys fs.FS, data []byte) (Result, error) {
	modules := map[string]*ast.Module{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return nil
		}
		src, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		modules[path] = m
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if len(modules) == 0 {
		return Result{}, errors.New("no Rego modules")
	}
	// Strict mode refuses unused variables, imports and arguments, and deprecated builtins.
	strict := ast.NewCompiler().WithStrict(true)
	strict.Compile(modules)
	if strict.Failed() {
		return Result{}, fmt.Errorf("strict compile: %v", strict.Errors)
	}
	doc := map[string]any{}
	if len(data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return Result{}, fmt.Errorf("data.json: %w", err)
		}
	}
	store := inmem.NewFromObject(doc)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return Result{}, err
	}
	defer store.Abort(ctx, txn)
	ch, err := tester.NewRunner().
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).
		RunTests(ctx, txn)
	if err != nil {
		return Result{}, err
	}
	var res Result
	for r := range ch {
		name := strings.TrimPrefix(r.Package, "data.") + "." + r.Name
		switch {
		case r.Error != nil:
			res.Failed = append(res.Failed, fmt.Sprintf("%s: error: %v", name, r.Error))
		case r.Fail:
			res.Failed = append(res.Failed, fmt.Sprintf("%s (%s): FAIL", name, r.Location))
		case r.Skip:
			res.Failed = append(res.Failed, name+": skipped")
		default:
			res.Passed++
		}
	}
	sort.Strings(res.Failed)
	return res, nil
}
