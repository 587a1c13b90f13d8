package planvm_test

import (
	"testing"
	"time"

	"github.com/timfd/fachdienst/wasm/planvm"
)

// A plan whose decision reads the clock only on one branch: the evaluator
// must say so exactly for the evaluations that took it.
const clockPlan = `{"static":{"strings":[{"value":"now"}],"builtin_funcs":[{"name":"time.now_ns","decl":{"type":"function","result":{"type":"number"}}}]},
"plans":{"plans":[{"name":"p/d","blocks":[
 {"stmts":[
  {"type":"IsDefinedStmt","stmt":{"source":0}},
  {"type":"DotStmt","stmt":{"source":{"type":"local","value":0},"key":{"type":"string_index","value":0},"target":2}},
  {"type":"CallStmt","stmt":{"func":"time.now_ns","args":[],"result":3}},
  {"type":"ResultSetAddStmt","stmt":{"value":3}}]},
 {"stmts":[
  {"type":"NotStmt","stmt":{"block":{"stmts":[{"type":"DotStmt","stmt":{"source":{"type":"local","value":0},"key":{"type":"string_index","value":0},"target":4}}]}}},
  {"type":"AssignVarStmt","stmt":{"source":{"type":"bool","value":true},"target":5}},
  {"type":"ResultSetAddStmt","stmt":{"value":5}}]}]}]},
"funcs":{"funcs":[]}}`

func TestDependsOnTime(t *testing.T) {
	prog, err := planvm.Load([]byte(clockPlan))
	if err != nil {
		t.Fatal(err)
	}
	ev := prog.NewEvaluator()
	withNow := planvm.NewObject(planvm.KV{Key: "now", Value: planvm.Bool(true)})
	without := planvm.NewObject()
	rows := []struct {
		name  string
		input planvm.Value
		opts  []planvm.EvalOption
		want  bool
	}{
		{"branch reads the clock", withNow, nil, true},
		{"branch without the clock", without, nil, false},
		{"again with the clock", withNow, nil, true},
		{"time given", without, []planvm.EvalOption{planvm.WithNow(time.Unix(1, 0))}, true},
		{"after a given time", without, nil, false},
	}
	for _, r := range rows {
		if _, ok, err := ev.Eval("p/d", r.input, planvm.NewObject(), r.opts...); err != nil || !ok {
			t.Fatalf("%s: eval: %v %v", r.name, ok, err)
		}
		if got := ev.DependsOnTime(); got != r.want {
			t.Errorf("%s: DependsOnTime = %v, want %v", r.name, got, r.want)
		}
	}
}
