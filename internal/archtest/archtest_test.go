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
