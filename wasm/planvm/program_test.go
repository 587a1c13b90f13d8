package planvm

import (
	"fmt"
	"strings"
	"testing"
)

// The loader reads the plan with ParseJSON; a plan of the wrong shape fails
// with an error that says where, and never panics.
func TestLoadRejectsMalformedPlans(t *testing.T) {
	body := func(stmts ...string) string { return planDoc(nil, "", block(stmts...)) }
	tests := []struct{ name, doc, want string }{
		{"not an object", `[]`, "planvm: parse plan: not an object"},
		{"trailing data", `{} x`, "planvm: parse plan: planvm: json at offset 3: trailing data"},
		{"strings not an array", `{"static":{"strings":5}}`, "static.strings: not an array"},
		{"string not a string", `{"static":{"strings":[{"value":1}]}}`, "static.strings[0].value: not a string"},
		{"builtin name not a string", `{"static":{"builtin_funcs":[{"name":true}]}}`, "static.builtin_funcs[0].name: not a string"},
		{"missing builtins sorted", `{"static":{"builtin_funcs":[{"name":"x.b"},{"name":"count"},{"name":"a.c"},{"name":"m.n"}]}}`, "unsupported builtins: a.c, m.n, x.b"},
		{"plans not an array", `{"plans":{"plans":{}}}`, "plans.plans: not an array"},
		{"funcs not an array", `{"funcs":{"funcs":"f"}}`, "funcs.funcs: not an array"},
		{"func path not strings", `{"funcs":{"funcs":[{"name":"g","path":["a",1]}]}}`, "func g: path: not a list of strings"},
		{"func param not a local", `{"funcs":{"funcs":[{"name":"g","params":[-1]}]}}`, "func g: params: negative local"},
		{"stmts not an array", planDoc(nil, "", `{"stmts":{}}`), "plan t/p: stmts: not an array"},
		{"block not an object", body(stmt("BlockStmt", `{"blocks":[5]}`)), "block: not an object"},
		{"stmt not an object", body(`{"type":"NopStmt","stmt":5}`), "NopStmt: stmt: not an object"},
		{"target not an integer", body(stmt("AssignIntStmt", `{"value":1,"target":"5"}`)), "AssignIntStmt: target: not an integer"},
		{"target with a fraction", body(stmt("AssignIntStmt", `{"value":1,"target":5.5}`)), "target: not an integer"},
		{"negative target", body(stmt("MakeNullStmt", `{"target":-1}`)), "MakeNullStmt: missing target"},
		{"missing target", body(stmt("MakeNullStmt", `{}`)), "MakeNullStmt: missing target"},
		{"local out of range", body(stmt("AssignVarStmt", `{"source":{"type":"local","value":4294967296},"target":2}`)), "value: local out of range"},
		{"negative local", body(stmt("AssignVarStmt", `{"source":{"type":"local","value":-3},"target":2}`)), "negative local"},
		{"missing operand", body(stmt("AssignVarStmt", `{"target":2}`)), "AssignVarStmt: operand: missing"},
		{"null operand", body(stmt("AssignVarStmt", `{"source":null,"target":2}`)), "AssignVarStmt: operand: missing"},
		{"operand not an object", body(stmt("AssignVarStmt", `{"source":5,"target":2}`)), "operand: not an object"},
		{"operand without value", body(stmt("AssignVarStmt", `{"source":{"type":"string_index"},"target":2}`)), "value: missing"},
		{"bool operand not a bool", body(stmt("AssignVarStmt", `{"source":{"type":"bool","value":1},"target":2}`)), "value: not a boolean"},
		{"int value too large", body(stmt("AssignIntStmt", `{"value":1e3,"target":2}`)), "value: not an integer"},
		{"scan without key", body(stmt("ScanStmt", `{"source":0,"value":3,"block":{"stmts":[]}}`)), "ScanStmt: key: missing"},
		{"scan without block", body(stmt("ScanStmt", `{"source":0,"key":2,"value":3}`)), "ScanStmt: missing block"},
		{"is-defined without source", body(stmt("IsDefinedStmt", `{}`)), "IsDefinedStmt: source: missing"},
		{"negative break", body(stmt("BreakStmt", `{"index":-1}`)), "break index out of range"},
		{"with path not integers", body(stmt("WithStmt", fmt.Sprintf(`{"local":0,"path":["a"],"value":%s,"block":{"stmts":[]}}`, loc(0)))), "path: not an integer"},
		{"call args not an array", body(stmt("CallStmt", `{"func":"count","args":{},"result":2}`)), "CallStmt: args: not an array"},
		{"dynamic call arg not a local", body(stmt("CallDynamicStmt", `{"args":["x"],"path":[],"result":2}`)), "args: not an integer"},
		{"number ref without index", body(stmt("MakeNumberRefStmt", `{"target":2}`)), "missing index"},
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

// Fields that OPA's planner writes differently across versions, or as null,
// load as the struct decoder this loader replaced read them.
func TestLoadCompatibleFields(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		// MakeNumberRefStmt's index was once written "Index".
		{"number ref, old field name", planDoc([]string{"42"}, "", block(append([]string{stmt("MakeNumberRefStmt", `{"Index":1,"target":5}`)}, resultOf(5)...)...)), "42"},
		{"number ref", planDoc([]string{"1.5"}, "", block(append([]string{stmt("MakeNumberRefStmt", `{"index":1,"target":5}`)}, resultOf(5)...)...)), "1.5"},
		// null members count as absent: an array capacity of null is 0.
		{"null capacity", planDoc(nil, "", block(append([]string{stmt("MakeArrayStmt", `{"capacity":null,"target":5}`)}, resultOf(5)...)...)), "[]"},
		{"unknown members ignored", planDoc(nil, "", block(append([]string{stmt("AssignIntStmt", `{"value":7,"target":5,"file":0,"row":3,"col":1}`)}, resultOf(5)...)...)), "7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := evalDoc(t, tc.doc, "")
			if err != nil || !ok || got != tc.want {
				t.Fatalf("got %s (defined %v, err %v), want %s", got, ok, err, tc.want)
			}
		})
	}
	p, err := Load([]byte(`{"static":null,"plans":{"plans":null},"funcs":null}`))
	if err != nil || len(p.Entrypoints()) != 0 {
		t.Fatalf("plan of nulls: %v, %v", p, err)
	}
}

// LoadValue loads the plan member of a parsed policy document as Load loads
// the plan's bytes.
func TestLoadValue(t *testing.T) {
	doc := mustParse(t, `{"revision":"r","plan":`+planDoc([]string{"42"}, "", block(append([]string{stmt("MakeNumberRefStmt", `{"index":1,"target":5}`)}, resultOf(5)...)...))+`}`)
	plan, _ := doc.Get("plan")
	p, err := LoadValue(plan)
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := p.Eval("t/p", Value{}, NewObject())
	if err != nil || !ok || mustJSON(v) != "42" {
		t.Fatalf("got %s %v %v", mustJSON(v), ok, err)
	}
	if _, err := LoadValue(String("plan")); err == nil || !strings.Contains(err.Error(), "not an object") {
		t.Fatalf("LoadValue of a string: %v", err)
	}
}

// FuzzLoad: any document either fails to load with an error or loads into
// a program whose plans evaluate (or fail) without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(planDoc(nil, "", block(resultOf(5)...))))
	f.Add([]byte(planDoc([]string{"7"}, "", block(append([]string{stmt("MakeNumberRefStmt", `{"index":1,"target":5}`)}, resultOf(5)...)...))))
	f.Add([]byte(`{"static":{"builtin_funcs":[{"name":"count"}]},"plans":{"plans":[{"name":"a","blocks":[{"stmts":[{"type":"BreakStmt","stmt":{"index":3}}]}]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Load(b)
		if err != nil {
			return
		}
		for _, e := range p.Entrypoints() {
			_, _, _ = p.Eval(e, Value{}, NewObject(), WithStepLimit(10000))
		}
	})
}
