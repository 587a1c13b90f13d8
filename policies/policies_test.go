package policies

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/control/policytest"
)

// TestRego runs every Rego `test_` rule of this directory against the default
// data document, as `opa test .` would (and as the control plane does before
// it accepts a policy revision).
func TestRego(t *testing.T) {
	raw, err := fs.ReadFile(FS, "data.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := policytest.Run(context.Background(), os.DirFS("."), raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failed {
		t.Error(f)
	}
	if res.Passed+len(res.Failed) == 0 {
		t.Fatal("no Rego tests found")
	}
	t.Logf("%d Rego tests", res.Passed+len(res.Failed))
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
