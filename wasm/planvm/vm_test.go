package planvm

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Hand-written plans exercise statements and edge cases the Rego fixtures
// cannot produce (hostile plans, breaks of several levels, merge rules).

func stmt(typ string, fields string) string {
	if fields == "" {
		fields = "{}"
	}
	return fmt.Sprintf(`{"type":%q,"stmt":%s}`, typ, fields)
}

func block(stmts ...string) string { return `{"stmts":[` + strings.Join(stmts, ",") + `]}` }

func loc(n int) string     { return fmt.Sprintf(`{"type":"local","value":%d}`, n) }
func str(i int) string     { return fmt.Sprintf(`{"type":"string_index","value":%d}`, i) }
func boolOp(b bool) string { return fmt.Sprintf(`{"type":"bool","value":%v}`, b) }

// resultOf wraps local n into {"result": n} and adds it to the result set;
// string 0 must be "result".
func resultOf(n int) []string {
	return []string{
		stmt("MakeObjectStmt", `{"target":90}`),
		stmt("ObjectInsertStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":90}`, str(0), loc(n))),
		stmt("ResultSetAddStmt", `{"value":90}`),
	}
}

func planDoc(strs []string, funcs string, blocks ...string) string {
	all := append([]string{"result"}, strs...)
	sb, _ := json.Marshal(all)
	var ss []string
	for _, s := range strings.Split(strings.Trim(string(sb), "[]"), ",") {
		ss = append(ss, `{"value":`+s+`}`)
	}
	if funcs == "" {
		funcs = "[]"
	}
	return fmt.Sprintf(`{"static":{"strings":[%s]},"plans":{"plans":[{"name":"t/p","blocks":[%s]}]},"funcs":{"funcs":%s}}`,
		strings.Join(ss, ","), strings.Join(blocks, ","), funcs)
}

func evalDoc(t *testing.T, doc string, input string, opts ...EvalOption) (string, bool, error) {
	t.Helper()
	p, err := Load([]byte(doc))
	if err != nil {
		t.Fatalf("load: %v\n%s", err, doc)
	}
	var in Value
	if input != "" {
		in = mustParse(t, input)
	}
	v, ok, err := p.Eval("t/p", in, NewObject(), opts...)
	if err != nil || !ok {
		return "", ok, err
	}
	return mustJSON(v), ok, nil
}

func TestStatements(t *testing.T) {
	withResult := func(stmts ...string) string { return block(append(stmts, resultOf(5)...)...) }
	tests := []struct {
		name    string
		strs    []string
		funcs   string
		blocks  []string
		input   string
		want    string // "" = undefined
		wantErr error
	}{
		{name: "MakeNumberInt+AssignVar", blocks: []string{withResult(
			stmt("MakeNumberIntStmt", `{"value":7,"target":4}`),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, loc(4))))}, want: "7"},
		{name: "AssignInt", blocks: []string{withResult(stmt("AssignIntStmt", `{"value":-3,"target":5}`))}, want: "-3"},
		{name: "MakeNumberRef big", strs: []string{"123456789012345678901234567890"},
			blocks: []string{withResult(stmt("MakeNumberRefStmt", `{"index":1,"target":5}`))}, want: "123456789012345678901234567890"},
		{name: "MakeNumberRef legacy Index", strs: []string{"1.5"},
			blocks: []string{withResult(stmt("MakeNumberRefStmt", `{"Index":1,"target":5}`))}, want: "1.5"},
		{name: "MakeNull", blocks: []string{withResult(stmt("MakeNullStmt", `{"target":5}`))}, want: "null"},
		{name: "MakeArray+ArrayAppend", strs: []string{"a"}, blocks: []string{withResult(
			stmt("MakeArrayStmt", `{"capacity":2,"target":5}`),
			stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, str(1))),
			stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, boolOp(true))))}, want: `["a",true]`},
		{name: "MakeSet+SetAdd dedupes and sorts", strs: []string{"b", "a"}, blocks: []string{withResult(
			stmt("MakeSetStmt", `{"target":5}`),
			stmt("SetAddStmt", fmt.Sprintf(`{"value":%s,"set":5}`, str(1))),
			stmt("SetAddStmt", fmt.Sprintf(`{"value":%s,"set":5}`, str(2))),
			stmt("SetAddStmt", fmt.Sprintf(`{"value":%s,"set":5}`, str(1))))}, want: `["a","b"]`},
		{name: "ObjectInsertOnce same value ok", strs: []string{"k"}, blocks: []string{withResult(
			stmt("MakeObjectStmt", `{"target":5}`),
			stmt("ObjectInsertOnceStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":5}`, str(1), boolOp(true))),
			stmt("ObjectInsertOnceStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":5}`, str(1), boolOp(true))))}, want: `{"k":true}`},
		{name: "ObjectInsertOnce conflict is an error", strs: []string{"k"}, blocks: []string{withResult(
			stmt("MakeObjectStmt", `{"target":5}`),
			stmt("ObjectInsertOnceStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":5}`, str(1), boolOp(true))),
			stmt("ObjectInsertOnceStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":5}`, str(1), boolOp(false))))}, wantErr: ErrConflict},
		{name: "ObjectInsert replaces", strs: []string{"k"}, blocks: []string{withResult(
			stmt("MakeObjectStmt", `{"target":5}`),
			stmt("ObjectInsertStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":5}`, str(1), boolOp(true))),
			stmt("ObjectInsertStmt", fmt.Sprintf(`{"key":%s,"value":%s,"object":5}`, str(1), boolOp(false))))}, want: `{"k":false}`},
		{name: "AssignVarOnce conflict is an error", blocks: []string{withResult(
			stmt("AssignVarOnceStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))),
			stmt("AssignVarOnceStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(false))))}, wantErr: ErrConflict},
		{name: "AssignVarOnce same value ok", blocks: []string{withResult(
			stmt("AssignVarOnceStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))),
			stmt("AssignVarOnceStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}, want: "true"},
		{name: "Dot on input", strs: []string{"a"}, input: `{"a":[1,2]}`, blocks: []string{withResult(
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":5}`, loc(0), str(1))))}, want: "[1,2]"},
		{name: "Dot missing key undefined", strs: []string{"zz"}, input: `{"a":1}`, blocks: []string{withResult(
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":5}`, loc(0), str(1))))}},
		{name: "Dot on scalar undefined", strs: []string{"a"}, input: `"s"`, blocks: []string{withResult(
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":5}`, loc(0), str(1))))}},
		{name: "Dot on undefined input", strs: []string{"a"}, blocks: []string{withResult(
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":5}`, loc(0), str(1))))}},
		{name: "Len", input: `{"a":1,"b":2}`, blocks: []string{withResult(
			stmt("LenStmt", fmt.Sprintf(`{"source":%s,"target":5}`, loc(0))))}, want: "2"},
		{name: "Equal numbers 1 == 1.0", strs: []string{"1.0"}, blocks: []string{withResult(
			stmt("MakeNumberIntStmt", `{"value":1,"target":4}`),
			stmt("MakeNumberRefStmt", `{"index":1,"target":6}`),
			stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, loc(4), loc(6))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}, want: "true"},
		{name: "NotEqual fails on equal", blocks: []string{withResult(
			stmt("NotEqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, boolOp(true), boolOp(true))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}},
		{name: "IsArray/IsObject/IsSet", input: `[1]`, blocks: []string{withResult(
			stmt("IsArrayStmt", fmt.Sprintf(`{"source":%s}`, loc(0))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}, want: "true"},
		{name: "IsObject fails on array", input: `[1]`, blocks: []string{withResult(
			stmt("IsObjectStmt", fmt.Sprintf(`{"source":%s}`, loc(0))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}},
		{name: "IsSet fails on object", input: `{}`, blocks: []string{withResult(
			stmt("IsSetStmt", fmt.Sprintf(`{"source":%s}`, loc(0))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}},
		{name: "IsUndefined on undefined input", blocks: []string{withResult(
			stmt("IsUndefinedStmt", `{"source":0}`),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}, want: "true"},
		{name: "IsDefined fails on undefined input", blocks: []string{withResult(
			stmt("IsDefinedStmt", `{"source":0}`),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))))}},
		{name: "ResetLocal", blocks: []string{withResult(
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":5}`, boolOp(true))),
			stmt("ResetLocalStmt", `{"target":5}`))}},
		{name: "Nop", blocks: []string{withResult(stmt("NopStmt", ""), stmt("AssignIntStmt", `{"value":1,"target":5}`))}, want: "1"},
		{name: "Not succeeds when block fails", blocks: []string{withResult(
			stmt("NotStmt", fmt.Sprintf(`{"block":%s}`, block(stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, boolOp(true), boolOp(false)))))),
			stmt("AssignIntStmt", `{"value":1,"target":5}`))}, want: "1"},
		{name: "Not fails when block succeeds", blocks: []string{withResult(
			stmt("NotStmt", fmt.Sprintf(`{"block":%s}`, block(stmt("NopStmt", "")))),
			stmt("AssignIntStmt", `{"value":1,"target":5}`))}},
		{name: "Break 1 leaves enclosing block", blocks: []string{
			block(
				stmt("AssignIntStmt", `{"value":1,"target":5}`),
				stmt("BlockStmt", fmt.Sprintf(`{"blocks":[%s]}`, block(stmt("BreakStmt", `{"index":1}`)))),
				stmt("AssignIntStmt", `{"value":2,"target":5}`)),
			block(resultOf(5)...)}, want: "1"},
		{name: "Break 0 continues after inner block", blocks: []string{
			block(
				stmt("AssignIntStmt", `{"value":1,"target":5}`),
				stmt("BlockStmt", fmt.Sprintf(`{"blocks":[%s]}`, block(stmt("BreakStmt", `{"index":0}`), stmt("AssignIntStmt", `{"value":3,"target":5}`)))),
				stmt("AssignIntStmt", `{"value":2,"target":6}`)),
			block(append([]string{stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, loc(6), loc(6)))}, resultOf(5)...)...)}, want: "1"},
		{name: "Scan sums array", input: `[1,2,3]`, blocks: []string{withResult(
			stmt("AssignIntStmt", `{"value":0,"target":5}`),
			stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
				stmt("CallStmt", fmt.Sprintf(`{"func":"plus","args":[%s,%s],"result":5}`, loc(5), loc(7)))))))}, want: "6"},
		{name: "Scan object in key order", input: `{"b":1,"a":2,"c":3}`, blocks: []string{withResult(
			stmt("MakeArrayStmt", `{"capacity":0,"target":5}`),
			stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
				stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(6)))))))}, want: `["a","b","c"]`},
		{name: "Scan break 1 stops the scan", input: `[1,2,3]`, blocks: []string{withResult(
			stmt("MakeArrayStmt", `{"capacity":0,"target":5}`),
			stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
				stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(7))),
				stmt("BreakStmt", `{"index":1}`)))))}, want: `[1]`},
		{name: "Scan over scalar runs nothing", input: `5`, blocks: []string{withResult(
			stmt("AssignIntStmt", `{"value":0,"target":5}`),
			stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
				stmt("AssignIntStmt", `{"value":9,"target":5}`)))))}, want: "0"},
		{name: "ObjectMerge a wins, recursive", strs: []string{"x", "y"}, input: `[{"x":{"y":1},"k":1},{"x":{"y":2,"z":3},"j":2}]`, blocks: []string{withResult(
			stmt("MakeNumberIntStmt", `{"value":0,"target":8}`),
			stmt("MakeNumberIntStmt", `{"value":1,"target":9}`),
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":6}`, loc(0), loc(8))),
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":7}`, loc(0), loc(9))),
			stmt("ObjectMergeStmt", `{"a":6,"b":7,"target":5}`))}, want: `{"j":2,"k":1,"x":{"y":1,"z":3}}`},
		{name: "With replaces input and restores", strs: []string{"a"}, input: `{"a":1}`, blocks: []string{withResult(
			stmt("MakeNumberIntStmt", `{"value":42,"target":4}`),
			stmt("WithStmt", fmt.Sprintf(`{"local":0,"path":[1],"value":%s,"block":%s}`, loc(4), block(
				stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":6}`, loc(0), str(1)))))),
			stmt("DotStmt", fmt.Sprintf(`{"source":%s,"key":%s,"target":7}`, loc(0), str(1))),
			stmt("MakeArrayStmt", `{"capacity":2,"target":5}`),
			stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(6))),
			stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(7))))}, want: "[42,1]"},
		{name: "Call function and ReturnLocal", strs: []string{"x"},
			funcs: `[{"name":"f","params":[0,1,2],"return":3,"blocks":[` + block(
				stmt("CallStmt", fmt.Sprintf(`{"func":"mul","args":[%s,%s],"result":3}`, loc(2), loc(2))),
				stmt("ReturnLocalStmt", `{"source":3}`)) + `]}]`,
			blocks: []string{withResult(
				stmt("MakeNumberIntStmt", `{"value":9,"target":4}`),
				stmt("CallStmt", fmt.Sprintf(`{"func":"f","args":[%s,%s,%s],"result":5}`, loc(0), loc(1), loc(4))))}, want: "81"},
		{name: "Call of undefined function result is undefined",
			funcs:  `[{"name":"f","params":[0,1],"return":3,"blocks":[` + block(stmt("ReturnLocalStmt", `{"source":3}`)) + `]}]`,
			blocks: []string{withResult(stmt("CallStmt", fmt.Sprintf(`{"func":"f","args":[%s,%s],"result":5}`, loc(0), loc(1))))}},
		{name: "CallDynamic finds function by path", strs: []string{"g0", "pkg", "r"},
			funcs: `[{"name":"g0.data.pkg.r","params":[0,1],"return":3,"path":["g0","pkg","r"],"blocks":[` + block(
				stmt("AssignIntStmt", `{"value":5,"target":3}`), stmt("ReturnLocalStmt", `{"source":3}`)) + `]}]`,
			blocks: []string{withResult(stmt("CallDynamicStmt", fmt.Sprintf(`{"args":[0,1],"path":[%s,%s,%s],"result":5}`, str(1), str(2), str(3))))}, want: "5"},
		{name: "CallDynamic unknown path is undefined", strs: []string{"g0", "nope"},
			blocks: []string{withResult(stmt("CallDynamicStmt", fmt.Sprintf(`{"args":[0,1],"path":[%s,%s],"result":5}`, str(1), str(2))))}},
		{name: "builtin error is undefined", strs: []string{"a"}, blocks: []string{withResult(
			stmt("CallStmt", fmt.Sprintf(`{"func":"plus","args":[%s,%s],"result":5}`, str(1), boolOp(true))))}},
		{name: "recursion hits the depth limit",
			funcs: `[{"name":"f","params":[0,1],"return":3,"blocks":[` + block(
				stmt("CallStmt", fmt.Sprintf(`{"func":"f","args":[%s,%s],"result":3}`, loc(0), loc(1))),
				stmt("ReturnLocalStmt", `{"source":3}`)) + `]}]`,
			blocks: []string{withResult(stmt("CallStmt", fmt.Sprintf(`{"func":"f","args":[%s,%s],"result":5}`, loc(0), loc(1))))}, wantErr: ErrDepthLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := evalDoc(t, planDoc(tc.strs, tc.funcs, tc.blocks...), tc.input)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v (result %s)", err, tc.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("defined %s, want undefined", got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Fatalf("got %s (defined %v), want %s", got, ok, tc.want)
			}
		})
	}
}

func TestStepLimit(t *testing.T) {
	// An endless scan is impossible, but a long one over a big input is not:
	// 10 000 elements with a 1 000-step limit must stop with an error.
	doc := planDoc(nil, "", block(append([]string{
		stmt("AssignIntStmt", `{"value":0,"target":5}`),
		stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
			stmt("CallStmt", fmt.Sprintf(`{"func":"plus","args":[%s,%s],"result":5}`, loc(5), loc(7)))))),
	}, resultOf(5)...)...))
	arr := make([]string, 10_000)
	for i := range arr {
		arr[i] = "1"
	}
	input := "[" + strings.Join(arr, ",") + "]"
	if _, _, err := evalDoc(t, doc, input, WithStepLimit(1000)); !errors.Is(err, ErrStepLimit) {
		t.Fatalf("err = %v, want step limit", err)
	}
	got, _, err := evalDoc(t, doc, input)
	if err != nil || got != "10000" {
		t.Fatalf("default limit: %s %v", got, err)
	}
}

func TestPanicRecovered(t *testing.T) {
	p, err := Load([]byte(planDoc(nil, "", block(resultOf(5)...))))
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the compiled program the way a bug would: an out-of-range slot.
	p.plans[0].code[0].a = 1 << 20
	if _, _, err := p.Eval("t/p", Value{}, NewObject()); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("err = %v, want recovered internal error", err)
	}
	// The pooled state is usable afterwards.
	p2, _ := Load([]byte(planDoc(nil, "", block(append([]string{stmt("AssignIntStmt", `{"value":1,"target":5}`)}, resultOf(5)...)...))))
	if v, ok, err := p2.Eval("t/p", Value{}, NewObject()); err != nil || !ok || mustJSON(v) != "1" {
		t.Fatalf("after panic: %s %v %v", mustJSON(v), ok, err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not json", `{`, "parse plan"},
		{"unknown statement", planDoc(nil, "", block(stmt("FooStmt", ""))), "unknown statement"},
		{"unsupported builtin", `{"static":{"builtin_funcs":[{"name":"http.send"},{"name":"count"}]},"plans":{"plans":[]}}`, "unsupported builtins: http.send"},
		{"unknown function", planDoc(nil, "", block(stmt("CallStmt", `{"func":"nope","args":[],"result":2}`))), `unknown function "nope"`},
		{"string index out of range", planDoc(nil, "", block(stmt("MakeNumberRefStmt", `{"index":99,"target":2}`))), "out of range"},
		{"bad operand type", planDoc(nil, "", block(stmt("AssignVarStmt", `{"source":{"type":"x","value":1},"target":2}`))), "unknown operand type"},
		{"wrong arity", planDoc(nil, "", block(stmt("CallStmt", fmt.Sprintf(`{"func":"count","args":[%s,%s],"result":2}`, loc(0), loc(0))))), "want 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestUnknownEntrypoint(t *testing.T) {
	p := loadPlan(t, "proxy")
	if got := p.Entrypoints(); !slices.Equal(got, []string{"tim/proxy/decision"}) {
		t.Fatalf("entrypoints %v", got)
	}
	if _, _, err := p.Eval("nope", Value{}, NewObject()); !errors.Is(err, ErrUnknownEntry) {
		t.Fatalf("err = %v", err)
	}
}

func TestEvalJSON(t *testing.T) {
	p := loadPlan(t, "stmts")
	out, ok, err := p.EvalJSON("t/stmts/obj_result", []byte(`{"user":"admin"}`), nil)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if want := `{"allow":true,"ask":null,"body":{"errcode":"M_FORBIDDEN"},"status":403}`; string(out) != want {
		t.Fatalf("got %s want %s", out, want)
	}
	// nil input is undefined input: allow falls back to its default.
	out, ok, err = p.EvalJSON("t/stmts/allow", nil, nil)
	if err != nil || !ok || string(out) != "false" {
		t.Fatalf("undefined input: %s %v %v", out, ok, err)
	}
	if _, _, err := p.EvalJSON("t/stmts/allow", []byte(`{`), nil); err == nil {
		t.Fatal("bad input JSON accepted")
	}
}

func TestNowIsFixedPerEval(t *testing.T) {
	p := loadPlan(t, "builtins")
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	v, ok, err := p.Eval("t/bi/now_positive", NewObject(), NewObject(), WithNow(at))
	if err != nil || !ok || mustJSON(v) != "true" {
		t.Fatalf("%s %v %v", mustJSON(v), ok, err)
	}
	m := &vm{hasNow: true, now: at.UnixNano()}
	if got, _ := builtins["time.now_ns"].fn(m, nil); !Equal(got, Int(at.UnixNano())) {
		t.Fatalf("now = %s", mustJSON(got))
	}
}

func TestBuiltinsListed(t *testing.T) {
	names := Builtins()
	if !slices.IsSorted(names) {
		t.Fatal("not sorted")
	}
	for _, want := range []string{"count", "sprintf", "startswith", "object.get", "internal.member_2", "internal.member_3", "time.now_ns", "and", "or", "minus"} {
		if !slices.Contains(names, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	p := loadPlan(t, "proxy")
	data := mustParse(t, string(proxyData(t, 100)))
	input := mustParse(t, proxyInputs[0])
	want, _, err := p.Eval("tim/proxy/decision", input, data)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 200 {
				got, _, err := p.Eval("tim/proxy/decision", input, data)
				if err != nil || !Equal(got, want) {
					done <- fmt.Errorf("got %s err %v", mustJSON(got), err)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
