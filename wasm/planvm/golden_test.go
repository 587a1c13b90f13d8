package planvm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// goldenCase is one evaluation answered by OPA itself (see
// tools/planfixtures, which writes testdata/golden.json).
type goldenCase struct {
	Plan    string          `json:"plan"`
	Entry   string          `json:"entry"`
	Input   json.RawMessage `json:"input"`
	Data    json.RawMessage `json:"data"`
	Defined bool            `json:"defined"`
	Result  json.RawMessage `json:"result"`
	Error   bool            `json:"error"`
}

// loadGolden reads testdata/golden.json.
func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func loadPlan(t testing.TB, name string) *Program {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(b)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return p
}

func mustParse(t testing.TB, s string) Value {
	t.Helper()
	v, err := ParseJSON([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}

func canonical(t testing.TB, raw []byte) string {
	t.Helper()
	b, err := ToJSON(mustParse(t, string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGoldenAgainstOPA evaluates every case of testdata/golden.json and
// compares the VM's answer with OPA's: defined-ness, error and the
// canonical JSON of the result.
//
// Each case runs twice: through Program.Eval and through one Evaluator per
// plan, reused across all cases, so that its arena is reset and reused
// between evaluations of different shapes.
func TestGoldenAgainstOPA(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 100 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	progs := map[string]*Program{}
	evals := map[string]*Evaluator{}
	for i, c := range cases {
		for _, mode := range []string{"program", "evaluator"} {
			name := fmt.Sprintf("%03d_%s/%s", i, c.Entry, mode)
			t.Run(name, func(t *testing.T) {
				p := progs[c.Plan]
				if p == nil {
					p = loadPlan(t, c.Plan)
					progs[c.Plan] = p
					evals[c.Plan] = p.NewEvaluator()
				}
				eval := p.Eval
				if mode == "evaluator" {
					eval = evals[c.Plan].Eval
				}
				var input Value
				if len(c.Input) > 0 {
					input = mustParse(t, string(c.Input))
				}
				data := NewObject()
				if len(c.Data) > 0 {
					data = mustParse(t, string(c.Data))
				}
				got, defined, err := eval(c.Entry, input, data, WithNow(time.Unix(1700000000, 0)))
				if c.Error {
					if err == nil {
						t.Fatalf("OPA reported an error; VM gave defined=%v %s", defined, mustJSON(got))
					}
					return
				}
				if err != nil {
					t.Fatalf("VM error %v; OPA: defined=%v %s (input %s)", err, c.Defined, c.Result, c.Input)
				}
				if defined != c.Defined {
					t.Fatalf("defined=%v, OPA %v (VM result %s, OPA %s, input %s)", defined, c.Defined, mustJSON(got), c.Result, c.Input)
				}
				if !defined {
					return
				}
				if g, w := mustJSON(got), canonical(t, c.Result); g != w {
					t.Fatalf("result\n got %s\nwant %s\ninput %s", g, w, c.Input)
				}
			})
		}
	}
}

func mustJSON(v Value) string {
	if !v.IsDefined() {
		return "<undefined>"
	}
	b, err := ToJSON(v)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}
