package planvm

import (
	"os"
	"testing"
)

// FuzzParseJSON: any input either fails cleanly or round-trips through the
// canonical encoding to an equal value.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true]}`, `"\ud83d\ude00"`, `[{"b":{}},[]]`, `1e400`, `-0.0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseJSON(b)
		if err != nil {
			return
		}
		out, err := ToJSON(v)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		v2, err := ParseJSON(out)
		if err != nil {
			t.Fatalf("reparse %s: %v", out, err)
		}
		if !Equal(v, v2) {
			t.Fatalf("round trip changed %s", out)
		}
	})
}

// FuzzEvalProxy: arbitrary input documents never make the proxy plan panic
// or exceed its limits; the decision is always defined, and an Evaluator
// reused across all inputs decides exactly as Program.Eval.
func FuzzEvalProxy(f *testing.F) {
	for _, s := range proxyInputs {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"direction":"client","route":"createRoom","invitees":[1,{"domain":[]}]}`))
	b, err := os.ReadFile("testdata/proxy.plan.json")
	if err != nil {
		f.Fatal(err)
	}
	p, err := Load(b)
	if err != nil {
		f.Fatal(err)
	}
	data, err := ParseJSON(proxyData(f, 10))
	if err != nil {
		f.Fatal(err)
	}
	e := p.NewEvaluator()
	f.Fuzz(func(t *testing.T, in []byte) {
		input, err := ParseJSON(in)
		if err != nil {
			return
		}
		want, ok, err := p.Eval("tim/proxy/decision", input, data)
		if err != nil || !ok {
			t.Fatalf("defined=%v err=%v for %s", ok, err, in)
		}
		got, ok, err := e.Eval("tim/proxy/decision", input, data)
		if err != nil || !ok {
			t.Fatalf("evaluator: defined=%v err=%v for %s", ok, err, in)
		}
		if g, w := mustJSON(got), mustJSON(want); g != w {
			t.Fatalf("evaluator %s, Program.Eval %s for %s", g, w, in)
		}
	})
}
