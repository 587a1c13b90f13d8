package planvm

import (
	"fmt"
	"testing"
)

// TestArenaReuse builds more composites and members than one chunk holds,
// resets, and builds again: members must not leak between evaluations or
// into a neighbour when a composite outgrows its size hint.
func TestArenaReuse(t *testing.T) {
	var a arena
	build := func(round int) []Value {
		var objs []Value
		for i := range (arenaKeep+2)*arenaComps + 5 {
			o := a.object(2)
			for j := range 3 { // one more than the hint: appends onto the heap
				o.c.objInsert(String(fmt.Sprintf("k%d", j)), Int(int64(round*1000+i)))
			}
			s := a.set(1)
			s.c.setAdd(Int(int64(i)))
			arr := a.array(1)
			arr.c.elems = append(arr.c.elems, o, s)
			objs = append(objs, arr)
		}
		return objs
	}
	for round := range 3 {
		objs := build(round)
		for i, arr := range objs {
			want := fmt.Sprintf(`[{"k0":%[1]d,"k1":%[1]d,"k2":%[1]d},[%[2]d]]`, round*1000+i, i)
			if got := mustJSON(arr); got != want {
				t.Fatalf("round %d, value %d: %s, want %s", round, i, got, want)
			}
		}
		if len(a.comps) < 2 || len(a.vals) < 2 {
			t.Fatalf("expected several chunks, have %d composite and %d value chunks", len(a.comps), len(a.vals))
		}
		a.reset()
		if len(a.comps) > arenaKeep || len(a.vals) > arenaKeep {
			t.Fatalf("reset kept %d composite and %d value chunks, at most %d", len(a.comps), len(a.vals), arenaKeep)
		}
		for _, ch := range a.comps {
			for j := range ch {
				if c := &ch[j]; c.elems != nil || c.vals != nil || c.scratch || c.sorted.Load() != nil {
					t.Fatalf("composite %d not reset", j)
				}
			}
		}
		for _, ch := range a.vals {
			for j := range ch {
				if ch[j].IsDefined() {
					t.Fatalf("value %d not reset", j)
				}
			}
		}
	}
}

// TestEvaluatorResultIsView documents the Evaluator contract: Program.Eval
// results stay valid, an Evaluator's result only until its next Eval.
func TestEvaluatorResultIsView(t *testing.T) {
	p := loadPlan(t, "proxy")
	data := mustParse(t, string(proxyData(t, 10)))
	e := p.NewEvaluator()
	for i, in := range proxyInputs {
		input := mustParse(t, in)
		want, ok, err := p.Eval("tim/proxy/decision", input, data)
		if err != nil || !ok {
			t.Fatalf("req %d: %v %v", i, ok, err)
		}
		wantJSON := mustJSON(want)
		got, ok, err := e.Eval("tim/proxy/decision", input, data)
		if err != nil || !ok {
			t.Fatalf("req %d: %v %v", i, ok, err)
		}
		if g := mustJSON(got); g != wantJSON {
			t.Fatalf("req %d: evaluator %s, program %s", i, g, wantJSON)
		}
		// A later evaluation leaves the Program.Eval result intact.
		if _, _, err := e.Eval("tim/proxy/decision", mustParse(t, proxyInputs[(i+1)%len(proxyInputs)]), data); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Eval("tim/proxy/decision", mustParse(t, proxyInputs[(i+1)%len(proxyInputs)]), data); err != nil {
			t.Fatal(err)
		}
		if g := mustJSON(want); g != wantJSON {
			t.Fatalf("req %d: Program.Eval result changed to %s", i, g)
		}
	}
}
