package planvm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParseToJSONCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":[true,false,null],"c":{"z":1,"y":2}}`, `{"a":[true,false,null],"b":1,"c":{"y":2,"z":1}}`},
		{` [ 1 , 2.50 , -0 , 1e3 , 123456789012345678901234567890 ] `, `[1,2.50,0,1e3,123456789012345678901234567890]`},
		{`"a\"b\\c\/\n\t\u00e9\ud83d\ude00<>&"`, "\"a\\\"b\\\\c/\\n\\t\u00e9\U0001F600\\u003c\\u003e\\u0026\""},
		{`"\u2028"`, `"\u2028"`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{}`, `{}`},
		{`[]`, `[]`},
	}
	for _, tc := range tests {
		v, err := ParseJSON([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := mustJSON(v); got != tc.want {
			t.Errorf("%s: got %s want %s", tc.in, got, tc.want)
		}
		// The canonical output is valid JSON.
		if !json.Valid([]byte(mustJSON(v))) {
			t.Errorf("%s: invalid output", tc.in)
		}
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `[1,]`, `{"a"}`, `{"a":1,}`, `01`, `1.`, `-`, `"abc`, `"\x"`, `tru`, `nul`, `[1] 2`, "\"a\x01\"", `{1:2}`,
		strings.Repeat("[", 600) + strings.Repeat("]", 600)} {
		if _, err := ParseJSON([]byte(in)); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestSetsAndCompositeKeys(t *testing.T) {
	s := NewSet(String("b"), Int(1), String("a"), Int(1), NewArray(Int(1)), Null())
	if got, want := mustJSON(s), `[null,1,"a","b",[1]]`; got != want {
		t.Fatalf("set %s want %s", got, want)
	}
	// 1 and 1.0 are the same member, in small and in indexed sets.
	for _, n := range []int{3, 50} {
		vs := []Value{}
		for i := range n {
			vs = append(vs, Int(int64(i)))
		}
		set := NewSet(vs...)
		one, _ := Number("1.0")
		if !set.Contains(one) || set.Len() != n {
			t.Fatalf("n=%d: contains 1.0 = %v, len %d", n, set.Contains(one), set.Len())
		}
		if set.Contains(String("1")) {
			t.Fatalf("n=%d: string 1 found", n)
		}
	}
	// Objects with non-string keys, indexed and not.
	for _, n := range []int{2, 40} {
		b := NewObjectBuilder(0)
		for i := range n {
			b.SetValue(NewArray(Int(int64(i)), String("k")), Int(int64(i)))
			b.Set(fmt.Sprintf("s%d", i), Bool(true))
		}
		o := b.Value()
		if v, ok := o.Lookup(NewArray(Int(1), String("k"))); !ok || !Equal(v, Int(1)) {
			t.Fatalf("n=%d: composite key lookup %v %v", n, mustJSON(v), ok)
		}
		if v, ok := o.Get("s1"); !ok || !Equal(v, Bool(true)) {
			t.Fatalf("n=%d: string key lookup", n)
		}
		if _, ok := o.Get("nope"); ok {
			t.Fatalf("n=%d: missing key found", n)
		}
	}
}

func TestAccessors(t *testing.T) {
	v := mustParse(t, `{"allow":false,"status":403,"body":{"errcode":"M_FORBIDDEN"},"ask":null,"n":1.5,"big":123456789012345678901234567890,"arr":["x","y"]}`)
	if b, ok := mustGet(t, v, "allow").AsBool(); !ok || b {
		t.Fatal("allow")
	}
	if n, ok := mustGet(t, v, "status").AsInt(); !ok || n != 403 {
		t.Fatal("status")
	}
	if s, ok := mustGet(t, mustGet(t, v, "body"), "errcode").AsString(); !ok || s != "M_FORBIDDEN" {
		t.Fatal("errcode")
	}
	if mustGet(t, v, "ask").Kind() != KindNull {
		t.Fatal("ask")
	}
	if f, ok := mustGet(t, v, "n").AsFloat(); !ok || f != 1.5 {
		t.Fatal("n")
	}
	if _, ok := mustGet(t, v, "n").AsInt(); ok {
		t.Fatal("1.5 as int")
	}
	if _, ok := mustGet(t, v, "big").AsInt(); ok {
		t.Fatal("big as int64")
	}
	if txt, _ := mustGet(t, v, "big").NumberText(); txt != "123456789012345678901234567890" {
		t.Fatal("big text")
	}
	arr := mustGet(t, v, "arr")
	if arr.Len() != 2 || !Equal(arr.Index(1), String("y")) || arr.Index(5).IsDefined() {
		t.Fatal("array access")
	}
	var keys []string
	v.Iterate(func(k, _ Value) bool {
		s, _ := k.AsString()
		keys = append(keys, s)
		return true
	})
	if got := strings.Join(keys, ","); got != "allow,arr,ask,big,body,n,status" {
		t.Fatalf("iterate order %s", got)
	}
	if _, ok := String("x").Get("a"); ok {
		t.Fatal("Get on string")
	}
	if Float(2).Kind() != KindNumber || mustJSON(Float(2)) != "2" || mustJSON(Float(0.25)) != "0.25" {
		t.Fatal("Float")
	}
	if _, err := ToJSON(Value{}); err == nil {
		t.Fatal("undefined encoded")
	}
}

func mustGet(t *testing.T, v Value, k string) Value {
	t.Helper()
	r, ok := v.Get(k)
	if !ok {
		t.Fatalf("missing %s in %s", k, mustJSON(v))
	}
	return r
}

func TestCompareOrder(t *testing.T) {
	// OPA's order: null < false < true < numbers < strings < arrays < objects < sets.
	ordered := []string{`null`, `false`, `true`, `-1`, `1`, `1.5`, `2`, `""`, `"a"`, `"b"`, `[]`, `[1]`, `[1,2]`, `[2]`, `{}`, `{"a":1}`, `{"a":2}`, `{"b":0}`}
	vals := make([]Value, len(ordered))
	for i, s := range ordered {
		vals[i] = mustParse(t, s)
	}
	vals = append(vals, NewSet(), NewSet(Int(1)))
	for i := range vals {
		for j := range vals {
			c := Compare(vals[i], vals[j])
			if (i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0) {
				t.Errorf("Compare(%s, %s) = %d", mustJSON(vals[i]), mustJSON(vals[j]), c)
			}
		}
	}
	one, _ := Number("1.0")
	if !Equal(Int(1), one) || Compare(Int(1), one) != 0 {
		t.Fatal("1 != 1.0")
	}
}

func TestParseJSONLarge(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"domains":{`)
	for i := range 20_000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"d%d.example.de":{"isInsurance":%v}`, i, i%2 == 0)
	}
	sb.WriteString(`}}`)
	v := mustParse(t, sb.String())
	doms := mustGet(t, v, "domains")
	if doms.Len() != 20_000 {
		t.Fatalf("len %d", doms.Len())
	}
	e := mustGet(t, doms, "d19998.example.de")
	if b, _ := mustGet(t, e, "isInsurance").AsBool(); !b {
		t.Fatal("entry value")
	}
}
