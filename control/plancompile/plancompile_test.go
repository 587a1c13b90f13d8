package plancompile

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/timfd/fachdienst/policies"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestCompilePolicies(t *testing.T) {
	ctx := context.Background()
	res, err := Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Static struct {
			BuiltinFuncs []struct {
				Name string `json:"name"`
			} `json:"builtin_funcs"`
		} `json:"static"`
		Plans struct {
			Plans []json.RawMessage `json:"plans"`
		} `json:"plans"`
	}
	if err := json.Unmarshal(res.Plan, &plan); err != nil {
		t.Fatalf("plan is not JSON: %v", err)
	}
	if len(plan.Plans.Plans) != len(res.Entrypoints) {
		t.Errorf("%d plans, %d entrypoints", len(plan.Plans.Plans), len(res.Entrypoints))
	}
	supported := vmBuiltins()
	var used []string
	for _, b := range plan.Static.BuiltinFuncs {
		used = append(used, b.Name)
		if !supported[b.Name] {
			t.Errorf("plan calls %q, which the VM lacks, and the check let it pass", b.Name)
		}
	}
	t.Logf("plan: %d bytes, builtins %v", len(res.Plan), used)

	again, err := Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Revision, "sha256:") || len(res.Revision) != len("sha256:")+64 {
		t.Errorf("revision %q", res.Revision)
	}
	if again.Revision != res.Revision || string(again.Plan) != string(res.Plan) {
		t.Error("compiling the same policies twice gave different plans")
	}
	changed, err := CompileModules(ctx, map[string]string{"p.rego": "package tim.proxy\n\ndecision := 1\n"}, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Revision == res.Revision {
		t.Error("different policies, same revision")
	}
}

// TestEntrypointsGolden fixes the plan's entrypoint list: a rule that starts
// to depend on the decision would be planned as an extra entrypoint.
func TestEntrypointsGolden(t *testing.T) {
	res, err := Compile(context.Background(), policies.FS, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Entrypoints, "\n") + "\n"
	golden := filepath.Join("testdata", "entrypoints.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("entrypoints:\n%s\nwant:\n%s", got, want)
	}
}

func TestRefusesUnsupportedBuiltins(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		file    string
		line    int
		builtin string
	}{
		{
			name: "call in body",
			src: `package tim.proxy

decision := r if {
	r := http.send({"method": "GET", "url": "https://x"})
}
`,
			line: 4, builtin: "http.send",
		},
		{
			// Not offered by the filter's VM (docs/decisions/size.md).
			name: "regular expression",
			src: `package tim.proxy

decision := {"allow": regex.match("^/_matrix/", input.path)}
`,
			line: 3, builtin: "regex.match",
		},
		{
			name: "call in head",
			src: `package tim.proxy

decision := http.send({"method": "GET", "url": "https://x"})
`,
			line: 3, builtin: "http.send",
		},
		{
			name: "call in else branch",
			src: `package tim.proxy

decision := 1 if {
	input.a
} else := n if {
	n := net.lookup_ip_addr("x")
}
`,
			line: 6, builtin: "net.lookup_ip_addr",
		},
		{
			name: "call in function reached through another rule",
			src: `package tim.proxy

decision := helper

helper := f("x")

f(x) := y if {
	y := opa.runtime()
}
`,
			line: 8, builtin: "opa.runtime",
		},
		{
			name: "builtin substituted with with",
			src: `package tim.proxy

decision := x if {
	x := count([1]) with count as http.send
}
`,
			line: 4, builtin: "http.send",
		},
		{
			name: "call in comprehension",
			src: `package tim.proxy

decision := [y | some x in input.xs; y := http.send(x)]
`,
			line: 3, builtin: "http.send",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileModules(context.Background(), map[string]string{"proxy.rego": tc.src}, policies.ProxyDecision)
			if err == nil {
				t.Fatal("compiled a policy the VM cannot run")
			}
			var be *BuiltinError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a BuiltinError", err)
			}
			if be.File != "proxy.rego" || be.Line != tc.line || be.Builtin != tc.builtin {
				t.Errorf("got %s:%d %q, want proxy.rego:%d %q", be.File, be.Line, be.Builtin, tc.line, tc.builtin)
			}
			want := `proxy.rego:` + strconv.Itoa(tc.line) + `: builtin "` + tc.builtin + `" is not supported by the filter's plan VM`
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		})
	}
}

func TestUnreachableRulesMayUseAnyBuiltin(t *testing.T) {
	modules := map[string]string{
		"proxy.rego":  "package tim.proxy\n\ndecision := {\"allow\": true}\n",
		"invite.rego": "package tim.invite\n\ndecision := http.send({\"method\": \"GET\", \"url\": \"https://x\"})\n",
	}
	res, err := CompileModules(context.Background(), modules, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Entrypoints, ",") != policies.ProxyDecision {
		t.Errorf("entrypoints %v", res.Entrypoints)
	}
	if _, err := CompileModules(context.Background(), modules, policies.ProxyDecision, policies.InviteDecision); err == nil {
		t.Error("planned http.send for the invite entrypoint")
	}
}

func TestReportsErrorsWithLocation(t *testing.T) {
	tests := []struct {
		name    string
		modules map[string]string
		entry   string
		want    []string
	}{
		{
			name:    "syntax error",
			modules: map[string]string{"bad.rego": "package tim.proxy\n\ndecision := {\n\t\"allow\": true,,\n}\n"},
			entry:   policies.ProxyDecision,
			want:    []string{"bad.rego:4:", "rego_parse_error"},
		},
		{
			name:    "undefined function",
			modules: map[string]string{"bad.rego": "package tim.proxy\n\ndecision := nope(1)\n"},
			entry:   policies.ProxyDecision,
			want:    []string{"bad.rego:3:", "nope"},
		},
		{
			name:    "rego v0 syntax refused",
			modules: map[string]string{"old.rego": "package tim.proxy\n\ndecision = 1 { true }\n"},
			entry:   policies.ProxyDecision,
			want:    []string{"old.rego:3:"},
		},
		{
			name:    "unknown entrypoint",
			modules: map[string]string{"p.rego": "package tim.proxy\n\ndecision := 1\n"},
			entry:   "tim/proxy/nothing",
			want:    []string{`"tim/proxy/nothing"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileModules(context.Background(), tc.modules, tc.entry)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileSkipsTestsAndOtherFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"tim/proxy.rego":      {Data: []byte("package tim.proxy\n\ndecision := 1\n")},
		"tim/proxy_test.rego": {Data: []byte("package tim.proxy_test\n\ntest_x if http.send({}) == data.tim.proxy.decision\n")},
		"tim/data.json":       {Data: []byte("{not json")},
	}
	res, err := Compile(context.Background(), fsys, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Entrypoints, ",") != policies.ProxyDecision {
		t.Errorf("entrypoints %v", res.Entrypoints)
	}
	if _, err := Compile(context.Background(), fstest.MapFS{}, policies.ProxyDecision); err == nil {
		t.Error("compiled an empty policy set")
	}
	if _, err := CompileModules(context.Background(), map[string]string{"p.rego": "package tim.proxy\n\ndecision := 1\n"}); err == nil {
		t.Error("compiled without an entrypoint")
	}
}
