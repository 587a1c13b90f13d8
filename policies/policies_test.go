package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRego runs every Rego `test_` rule of this directory against the default
// data document, as `opa test .` would.
func TestRego(t *testing.T) {
	ctx := context.Background()
	modules := map[string]*ast.Module{}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".rego") {
			continue
		}
		src, err := os.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(e.Name(), string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		modules[e.Name()] = m
	}
	// Strict mode refuses unused variables, imports and arguments, and
	// deprecated builtins: the policies are kept to that standard.
	strict := ast.NewCompiler().WithStrict(true)
	strict.Compile(modules)
	if strict.Failed() {
		t.Fatalf("strict compile: %v", strict.Errors)
	}
	raw, err := fs.ReadFile(FS, "data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		t.Fatalf("data.json: %v", err)
	}
	store := inmem.NewFromObject(data)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Abort(ctx, txn)

	ch, err := tester.NewRunner().
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).
		RunTests(ctx, txn)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		name := r.Package + "." + r.Name
		switch {
		case r.Error != nil:
			t.Errorf("%s: error: %v", name, r.Error)
		case r.Fail:
			t.Errorf("%s (%s): FAIL", name, r.Location)
		case r.Skip:
			t.Errorf("%s: skipped", name)
		}
	}
	if n == 0 {
		t.Fatal("no Rego tests found")
	}
	t.Logf("%d Rego tests", n)
}

// TestFSHoldsEveryPolicy guards the embed list: a policy file added to the
// directory but not to FS would silently be missing from the control plane.
func TestFSHoldsEveryPolicy(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".rego") {
			continue
		}
		_, err := fs.Stat(FS, name)
		isTest := strings.HasSuffix(name, "_test.rego")
		if isTest && err == nil {
			t.Errorf("%s: tests must not be embedded", name)
		}
		if !isTest && err != nil {
			t.Errorf("%s: not embedded in FS", name)
		}
	}
}
