// Package archtest holds tests of the project's layout rules rather than of behaviour.
package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// forbiddenInFilter lists what must never be linked into the Wasm filter: the policy compiler, the web
// framework and database drivers belong to the control plane. They would bloat the module far beyond its
// size budget and, for OPA, import WASI functions that Envoy does not provide.
var forbiddenInFilter = []string{
	"github.com/open-policy-agent/",
	"github.com/gin-gonic/",
	"database/sql",
	"modernc.org/sqlite",
	"github.com/jackc/",
	"github.com/lib/pq",
	"github.com/pressly/goose",
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// goList returns the import paths of the dependencies of ./wasm/... as seen by `go list`.
func goList(t *testing.T, env []string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	return strings.Fields(string(out))
}

func TestFilterTreeHasNoForbiddenDependencies(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
	}{
		// What the filter links, as built for Envoy.
		{"wasip1 build", []string{"GOOS=wasip1", "GOARCH=wasm"}, []string{"-deps", "./wasm/..."}},
		// Test files under wasm/ count too: they must run without the control plane's dependencies.
		{"native tests", nil, []string{"-deps", "-test", "./wasm/..."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, pkg := range goList(t, c.env, c.args...) {
				for _, bad := range forbiddenInFilter {
					if strings.HasPrefix(pkg, bad) {
						t.Errorf("package %s is reachable from ./wasm/... (%s)", pkg, c.name)
					}
				}
			}
		})
	}
}

// forbiddenInModule lists standard packages that the compiled filter module must not link although
// the rest of wasm/ may use them (test helpers such as fedlisttest), each with what to use instead.
// encoding/json costs about 235 KB of code through reflection, regexp about 518 KB with its Unicode
// tables; the module must stay under 6 MB (docs/decisions/size.md).
var forbiddenInModule = map[string]string{
	"encoding/json": "read JSON with planvm.ParseJSON, write it with planvm.AppendJSON",
	"regexp":        "the plan VM offers no regex.match (size.md S7)",
}

// linked reports whether pkg is among the dependencies of the wasip1 build of module.
func linked(t *testing.T, module, pkg string) bool {
	t.Helper()
	for _, p := range goList(t, []string{"GOOS=wasip1", "GOARCH=wasm"}, "-deps", module) {
		if p == pkg {
			return true
		}
	}
	return false
}

func TestFilterModuleHasNoHeavyPackages(t *testing.T) {
	// The check sees encoding/json where it is used, so that it cannot pass by looking at nothing.
	if !linked(t, "./wasm/fedlist/fedlisttest", "encoding/json") {
		t.Fatal("go list does not show encoding/json for fedlisttest, which uses it")
	}
	for bad, instead := range forbiddenInModule {
		if linked(t, "./wasm/cmd/tim-filter", bad) {
			t.Errorf("package %s is linked into the filter module; %s", bad, instead)
		}
	}
}
