package planvm

import (
	"fmt"
	"os"
	"testing"
)

// The filter's plan and policy data (wasm/filter/testdata, kept current by
// proxyhost/genplan's test). BenchmarkEvaluatorFilter evaluates them the way the filter
// does per request: one reused Evaluator, an input built with builders,
// data.federation.domains added to the policy data.

// filterData returns the policy data with n federation domains
// (d<i>.example.de, every seventh an insurance), like the filter's
// rebuildData.
func filterData(t testing.TB, n int) Value {
	t.Helper()
	raw, err := os.ReadFile("../filter/testdata/policy-data.json")
	if err != nil {
		t.Fatal(err)
	}
	pd, err := ParseJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	ins, other := NewObject(KV{"isInsurance", Bool(true)}), NewObject(KV{"isInsurance", Bool(false)})
	db := NewObjectBuilder(n)
	for i := range n {
		e := other
		if i%7 == 0 {
			e = ins
		}
		db.Set(fmt.Sprintf("d%d.example.de", i), e)
	}
	// The endpoint tables of policies/data.json, which the filter's test
	// data leaves to them.
	defRaw, err := os.ReadFile("../../policies/data.json")
	if err != nil {
		t.Fatal(err)
	}
	def, err := ParseJSON(defRaw)
	if err != nil {
		t.Fatal(err)
	}
	defCfg, _ := def.Get("config")
	endpoints, _ := defCfg.Get("endpoints")
	cfg, _ := pd.Get("config")
	cb := NewObjectBuilder(cfg.Len() + 1)
	cfg.Iterate(func(k, v Value) bool { cb.SetValue(k, v); return true })
	cb.Set("endpoints", endpoints)
	b := NewObjectBuilder(pd.Len() + 1)
	pd.Iterate(func(k, v Value) bool { b.SetValue(k, v); return true })
	b.Set("config", cb.Value())
	b.Set("federation", NewObject(KV{"domains", db.Value()}))
	return b.Value()
}

// filterInputs are a client request with an approved client id and a
// federation request from a listed domain, as the filter builds them.
func filterInputs() map[string]Value {
	c := NewObjectBuilder(8)
	c.Set("direction", String("client"))
	c.Set("method", String("GET"))
	c.Set("path", String("/_matrix/client/v3/sync"))
	c.Set("host", String("matrix.home.example.de"))
	c.Set("route", String("client_other"))
	c.Set("endpoint", String("/_matrix/client/r0|v3|unstable/sync"))
	c.Set("client_id", String("tim-client-1.0"))
	c.Set("federation_list_expired", Bool(false))
	fed := buildInput(NewObjectBuilder(8), NewObjectBuilder(4))
	return map[string]Value{"client": c.Value(), "federation": fed}
}

func loadFilterPlan(t testing.TB) *Program {
	t.Helper()
	raw, err := os.ReadFile("../filter/testdata/proxy-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFilterPlanAllows checks that the benchmark's requests are allowed,
// so that the benchmark measures the full allow path.
func TestFilterPlanAllows(t *testing.T) {
	p, data := loadFilterPlan(t), filterData(t, 1000)
	e := p.NewEvaluator()
	for name, in := range filterInputs() {
		for _, eval := range []func(string, Value, Value, ...EvalOption) (Value, bool, error){p.Eval, e.Eval} {
			res, ok, err := eval("tim/proxy/decision", in, data)
			if err != nil || !ok {
				t.Fatalf("%s: %v %v", name, ok, err)
			}
			if allow, _ := res.Get("allow"); !Equal(allow, Bool(true)) {
				t.Fatalf("%s: decision %s", name, mustJSON(res))
			}
		}
	}
}

func BenchmarkEvaluatorFilter(b *testing.B) {
	p, data := loadFilterPlan(b), filterData(b, 1000)
	e := p.NewEvaluator()
	ins := filterInputs()
	for _, name := range []string{"client", "federation"} {
		b.Run(name, func(b *testing.B) { benchDecision(b, e.Eval, ins[name], data) })
	}
}
