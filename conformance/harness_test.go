package conformance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEqualJSON(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true},
		{`1e3`, `1000`, true},
		{`123456789012345678901234567890`, `123456789012345678901234567890`, true},
		{`123456789012345678901234567890`, `123456789012345678901234567891`, false},
		{`0.1`, `0.10000000000000001`, false},
		{`{"a":[1,"x",null,true]}`, `{"a":[1,"x",null,true]}`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`[1,2]`, `[2,1]`, false},
		{`"1"`, `1`, false},
		{`null`, `false`, false},
		{`{}`, `[]`, false},
	} {
		got, err := EqualJSON([]byte(tc.a), []byte(tc.b))
		if err != nil || got != tc.want {
			t.Errorf("EqualJSON(%s, %s) = %v, %v; want %v", tc.a, tc.b, got, err, tc.want)
		}
	}
}

func TestQueryOf(t *testing.T) {
	for in, want := range map[string]string{
		"tim/proxy/decision": "data.tim.proxy.decision",
		"x/a-b":              `data.x["a-b"]`,
		"x/if":               `data.x["if"]`,
	} {
		if got := QueryOf(in); got != want {
			t.Errorf("QueryOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadCorpus(t *testing.T) {
	fsys := fstest.MapFS{"a.yaml": {Data: []byte(`
cases:
  - name: big
    modules: {a.rego: "package x\nr := input.n"}
    entrypoint: x/r
    input: {n: 123456789012345678901234567890.5}
    want: {defined: true, result: 123456789012345678901234567890.5}
  - name: absent-input
    modules: {a.rego: "package x\nr := 1"}
    entrypoint: x/r
    data: {a: [1, "s", null]}
    want: {defined: false}
  - name: null-input
    policies: true
    entrypoint: x/r
    data: {config: {b: 2}}
    input: null
    want: {error: true}
`)}}
	cases, err := LoadCorpus(fsys, []byte(`{"config":{"a":1,"b":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 3 {
		t.Fatalf("%d cases", len(cases))
	}
	if got := string(cases[0].Input); got != `{"n":123456789012345678901234567890.5}` {
		t.Errorf("input = %s", got)
	}
	if cases[1].Input != nil || string(cases[1].Data) != `{"a":[1,"s",null]}` {
		t.Errorf("case 2: input %q data %s", cases[1].Input, cases[1].Data)
	}
	if string(cases[2].Input) != "null" || !cases[2].Want.Error {
		t.Errorf("case 3: input %q want %+v", cases[2].Input, cases[2].Want)
	}
	if eq, _ := EqualJSON(cases[2].Data, []byte(`{"config":{"a":1,"b":2}}`)); !eq {
		t.Errorf("merged data = %s", cases[2].Data)
	}

	for name, bad := range map[string]string{
		"no want":        "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r}]",
		"unknown field":  "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r, want: {defined: false}, inptu: 1}]",
		"both sources":   "cases: [{name: a, policies: true, modules: {a.rego: x}, entrypoint: x/r, want: {defined: false}}]",
		"result missing": "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r, want: {defined: true}}]",
		"hex number":     "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r, input: 0x1F, want: {defined: false}}]",
		"two inputs":     "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r, input: 1, input_json: '1', want: {defined: false}}]",
		"bad input_json": "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r, input_json: '{', want: {defined: false}}]",
		"duplicate name": "cases: [{name: a, modules: {a.rego: x}, entrypoint: x/r, want: {defined: false}}, {name: a, modules: {a.rego: x}, entrypoint: x/r, want: {defined: false}}]",
	} {
		if _, err := LoadCorpus(fstest.MapFS{"b.yaml": {Data: []byte(bad)}}, nil); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}

// TestRunDetectsMismatch makes sure a wrong expectation fails the case, so
// that the corpus run cannot pass vacuously.
func TestRunDetectsMismatch(t *testing.T) {
	mods := map[string]string{"a.rego": "package x\nr := input.n + 1"}
	s := &Suite{Cases: []Case{
		{Name: "right", Modules: mods, Entrypoint: "x/r", Data: []byte(`{}`), Input: []byte(`{"n":1}`), Want: Want{Defined: true, Result: []byte(`2`)}},
		{Name: "wrong", Modules: mods, Entrypoint: "x/r", Data: []byte(`{}`), Input: []byte(`{"n":1}`), Want: Want{Defined: true, Result: []byte(`3`)}},
		{Name: "undef", Modules: mods, Entrypoint: "x/r", Data: []byte(`{}`), Want: Want{Defined: true, Result: []byte(`2`)}},
	}}
	rep := Run(context.Background(), s)
	if rep.Mismatches() != 2 || !rep.Results[0].OK() {
		for _, r := range rep.Results {
			t.Log(r.Case.Name, r.Problems)
		}
		t.Fatalf("mismatches = %d, want 2 (wrong, undef)", rep.Mismatches())
	}
	if got := rep.Summary(); got != "conformance: 3 cases, 2 mismatches" {
		t.Errorf("summary %q", got)
	}
	if !strings.HasPrefix(rep.Results[1].Problems[0], "corpus:") {
		t.Errorf("problem %q", rep.Results[1].Problems[0])
	}
}

func TestDiff(t *testing.T) {
	def := func(s string) Outcome { return Outcome{Result: []byte(s), Defined: true} }
	for _, tc := range []struct {
		opa, vm Outcome
		same    bool
	}{
		{def(`1`), def(`1.0`), true},
		{def(`1`), def(`2`), false},
		{Outcome{}, Outcome{}, true},
		{Outcome{}, def(`false`), false},
		{Outcome{Err: errors.New("a")}, Outcome{Err: errors.New("b")}, true},
		{Outcome{Err: errors.New("a")}, Outcome{}, false},
	} {
		if got := Diff(tc.opa, tc.vm) == ""; got != tc.same {
			t.Errorf("Diff(%s, %s) same=%v", tc.opa, tc.vm, got)
		}
	}
}
