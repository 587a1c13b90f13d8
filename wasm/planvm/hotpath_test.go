package planvm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The hot path of evaluation takes shortcuts (word-wise key comparison,
// lookups that start where the key was found last time, call frames that
// are cleared per evaluation instead of per call, the last entrypoint
// remembered). These tests pin that the shortcuts never change an answer.

func TestSameBytes(t *testing.T) {
	// Every length around the word sizes, equal strings in different
	// memory, and a difference at every position.
	for n := range 21 {
		a := strings.Repeat("k", n)
		b := string([]byte(a)) // same bytes, other memory
		if !sameBytes(a, b) {
			t.Errorf("n=%d: equal strings differ", n)
		}
		for p := range n {
			c := []byte(a)
			c[p] = 'x'
			if sameBytes(a, string(c)) {
				t.Errorf("n=%d: difference at %d not seen", n, p)
			}
		}
	}
}

// dotKeys exercise every branch of sameBytes, with keys that differ from
// each other only in one byte.
var dotKeys = []string{"", "a", "ab", "abc", "abcd", "abcX", "route", "routX", "client_", "abcdefgh", "abcdefgX",
	"direction", "directioX", "Xirection", "abcdefghijklmnop", "abcdefghijklmnoX", "abcdefghijklmnopq", "abcdefghijklmnopX"}

// dotPlan looks every key of dotKeys up in input and in input.n and
// returns the members found, as {"in": {...}, "n": {...}}.
func dotPlan() string {
	strs := append([]string{"in", "n"}, dotKeys...)
	var stmts []string
	stmts = append(stmts,
		stmt("MakeObjectStmt", `{"target":10}`),
		stmt("MakeObjectStmt", `{"target":11}`),
		stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":12}`, loc(0), str(2))))
	for i := range dotKeys {
		k := str(3 + i)
		for _, obj := range []struct{ src, dst int }{{0, 10}, {12, 11}} {
			stmts = append(stmts, stmt("BlockStmt", fmt.Sprintf(`{"blocks":[%s]}`, block(
				stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":13}`, loc(obj.src), k)),
				stmt("ObjectInsertStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":%d}`, k, loc(13), obj.dst))))))
		}
	}
	stmts = append(stmts,
		stmt("MakeObjectStmt", `{"target":14}`),
		stmt("ObjectInsertStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":14}`, str(1), loc(10))),
		stmt("ObjectInsertStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":14}`, str(2), loc(11))))
	stmts = append(stmts, resultOf(14)...)
	return planDoc(strs, "", block(stmts...))
}

// TestDotFollowsChangingShapes evaluates lookups through one Evaluator
// over objects whose members change order, presence and size (up to
// indexed objects) from one evaluation to the next, so that the position
// where a key was found last time is wrong as often as right.
func TestDotFollowsChangingShapes(t *testing.T) {
	p, err := Load([]byte(dotPlan()))
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEvaluator()
	rng := rand.New(rand.NewPCG(1, 2))
	// Keys that are not looked up but share lengths and first bytes.
	extra := []string{"b", "abcY", "routY", "directioY", "abcdefghijklmnoY", "zz"}
	members := func(r int) ([]KV, Value) {
		pool := append(append([]string{}, dotKeys...), extra...)
		rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		n := rng.IntN(len(pool) + 1)
		if r%5 == 0 {
			n = min(n, smallLen) // small objects (scanned) as often as indexed ones
		}
		kvs := make([]KV, n)
		want := NewObjectBuilder(0)
		for i, k := range pool[:n] {
			kvs[i] = KV{k, String(fmt.Sprintf("%s=%d", k, r))}
			for _, dk := range dotKeys {
				if dk == k {
					want.Set(k, kvs[i].Value)
				}
			}
		}
		return kvs, want.Value()
	}
	for r := range 200 {
		outer, wantIn := members(r)
		inner, wantN := members(r + 1000)
		input := NewObject(append(outer, KV{"n", NewObject(inner...)})...)
		want := mustJSON(NewObject(KV{"in", wantIn}, KV{"n", wantN}))
		for name, eval := range map[string]func(string, Value, Value, ...EvalOption) (Value, bool, error){"evaluator": e.Eval, "program": p.Eval} {
			res, ok, err := eval("t/p", input, NewObject())
			if err != nil || !ok {
				t.Fatalf("round %d %s: %v %v", r, name, ok, err)
			}
			if got := mustJSON(res); got != want {
				t.Fatalf("round %d %s:\n got %s\nwant %s", r, name, got, want)
			}
		}
	}
}

// TestCallFramesStartUndefined calls a function once per element of a
// large array; the function sets a local only for true elements and
// answers whether it is set. A frame holding a previous call's locals
// would answer "set" for false elements. 3 000 calls pass the point where
// frames are no longer left to the end of the evaluation (stackKeep).
func TestCallFramesStartUndefined(t *testing.T) {
	strs := []string{"set", "unset"}
	// f(input, data, x): local 4 is defined only when x is true.
	fn := `[{"name":"f","params":[0,1,2],"return":3,"blocks":[` + strings.Join([]string{
		block(
			stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, loc(2), boolOp(true))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":4}`, str(1)))),
		block(
			stmt("IsDefinedStmt", `{"source":4}`),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":3}`, str(1))),
			stmt("ReturnLocalStmt", `{"source":3}`)),
		block(
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":3}`, str(2))),
			stmt("ReturnLocalStmt", `{"source":3}`)),
	}, ",") + `]}]`
	doc := planDoc(strs, fn, block(append([]string{
		stmt("MakeArrayStmt", `{"capacity":0,"target":5}`),
		stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
			stmt("CallStmt", fmt.Sprintf(`{"func":"f","args":[%s,%s,%s],"result":8}`, loc(0), loc(1), loc(7))),
			stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(8)))))),
	}, resultOf(5)...)...))
	p, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEvaluator()
	for _, n := range []int{1, 10, 3000} {
		in, want := make([]Value, n), make([]Value, n)
		for i := range in {
			set := i%3 == 0
			in[i] = Bool(set)
			want[i] = String(map[bool]string{true: "set", false: "unset"}[set])
		}
		for round := range 2 { // the second round reuses the Evaluator's stack
			res, ok, err := e.Eval("t/p", NewArray(in...), NewObject())
			if err != nil || !ok {
				t.Fatalf("n=%d: %v %v", n, ok, err)
			}
			if !Equal(res, NewArray(want...)) {
				t.Fatalf("n=%d round %d: wrong answers, first %s", n, round, mustJSON(res.Index(1)))
			}
		}
	}
}

// TestEntrypointSwitch alternates entrypoints (names in fresh memory each
// time, and an unknown one) on one Evaluator.
func TestEntrypointSwitch(t *testing.T) {
	plan := func(name string, v int) string {
		return fmt.Sprintf(`{"name":%q,"blocks":[%s]}`, name, block(append([]string{
			stmt("MakeNumberIntStmt", fmt.Sprintf(`{"value":%d,"target":5}`, v))}, resultOf(5)...)...))
	}
	doc := fmt.Sprintf(`{"static":{"strings":[{"value":"result"}]},"plans":{"plans":[%s,%s]},"funcs":{"funcs":[]}}`, plan("t/a", 1), plan("t/b", 2))
	p, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEvaluator()
	for i, tc := range []struct {
		entry string
		want  string
	}{{"t/a", "1"}, {"t/a", "1"}, {"t/b", "2"}, {"t/a", "1"}, {"t/c", ""}, {"t/b", "2"}, {"t/b", "2"}} {
		entry := strings.Clone(tc.entry)
		res, ok, err := e.Eval(entry, Value{}, NewObject())
		if tc.want == "" {
			if !errors.Is(err, ErrUnknownEntry) {
				t.Fatalf("%d %s: err %v", i, entry, err)
			}
			continue
		}
		if err != nil || !ok || mustJSON(res) != tc.want {
			t.Fatalf("%d %s: %s %v %v", i, entry, mustJSON(res), ok, err)
		}
	}
}
