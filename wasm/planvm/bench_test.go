package planvm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// proxyData returns the data document of the proxy fixture's first golden
// case with n generated federation domains added (d<i>.example.de).
func proxyData(t testing.TB, n int) []byte {
	t.Helper()
	cases := loadGolden(t)
	var base map[string]any
	for _, c := range cases {
		if c.Plan == "proxy" {
			if err := json.Unmarshal(c.Data, &base); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if base == nil {
		t.Fatal("no proxy case in golden.json")
	}
	doms := base["federation"].(map[string]any)["domains"].(map[string]any)
	for i := range n {
		doms[fmt.Sprintf("d%d.example.de", i)] = map[string]any{"telematikID": fmt.Sprintf("1-%d", i), "isInsurance": i%7 == 0}
	}
	b, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proxyInputs are realistic requests: a createRoom with one federated
// invitee, a federation send, an egress request.
var proxyInputs = []string{
	`{"direction":"client","method":"POST","path":"/_matrix/client/v3/createRoom","host":"home.example.de","route":"createRoom","client_id":"tim-client-1.0","federation_list_expired":false,"invitees":[{"mxid":"@a:d77.example.de","domain":"d77.example.de"}]}`,
	`{"direction":"federation","method":"PUT","path":"/_matrix/federation/v1/send/1","host":"home.example.de","route":"federation_other","federation_list_expired":false,"xmatrix":{"origin":"d500.example.de","destination":"home.example.de"}}`,
	`{"direction":"egress","method":"GET","path":"/_matrix/federation/v1/version","host":"d900.example.de","route":"federation_other","federation_list_expired":false}`,
}

func BenchmarkEvalProxy(b *testing.B) {
	p := loadPlan(b, "proxy")
	for _, n := range []int{1_000, 100_000} {
		data, err := ParseJSON(proxyData(b, n))
		if err != nil {
			b.Fatal(err)
		}
		for i, in := range proxyInputs {
			input := mustParse(b, in)
			b.Run(fmt.Sprintf("domains=%d/req=%d", n, i), func(b *testing.B) {
				benchDecision(b, p.Eval, input, data)
			})
		}
	}
}

// BenchmarkEvalProxyBuildInput includes building the input with the
// constructors, as the filter does per request.
func BenchmarkEvalProxyBuildInput(b *testing.B) {
	p := loadPlan(b, "proxy")
	data, err := ParseJSON(proxyData(b, 100_000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuNanos()
	defer reportCPU(b, start)
	for range b.N {
		ob := NewObjectBuilder(8)
		ob.Set("direction", String("federation"))
		ob.Set("method", String("PUT"))
		ob.Set("path", String("/_matrix/federation/v1/send/1"))
		ob.Set("host", String("home.example.de"))
		ob.Set("route", String("federation_other"))
		ob.Set("federation_list_expired", Bool(false))
		ob.Set("xmatrix", NewObject(KV{"origin", String("d500.example.de")}, KV{"destination", String("home.example.de")}))
		res, _, err := p.Eval("tim/proxy/decision", ob.Value(), data)
		if err != nil {
			b.Fatal(err)
		}
		if v, _ := res.Get("allow"); !Equal(v, Bool(true)) {
			b.Fatal(mustJSON(res))
		}
	}
}

func BenchmarkParseJSON(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		doc := proxyData(b, n)
		b.Run(fmt.Sprintf("domains=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuNanos()
			for range b.N {
				if _, err := ParseJSON(doc); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

func BenchmarkToJSON(b *testing.B) {
	v := mustParse(b, `{"allow":false,"status":403,"body":{"errcode":"M_FORBIDDEN","error":"x.de could not be invited"},"ask":null,"reason":"r","check":"federation","refetch":true}`)
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for range b.N {
		var err error
		if buf, err = AppendJSON(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
	_ = strings.TrimSpace(string(buf))
}

// reportCPU adds the CPU time per operation (cpu-ns/op) to the benchmark's
// figures; with -cpu 1 it excludes time spent waiting for a core.
func reportCPU(b *testing.B, start int64) {
	if start > 0 {
		b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkEvaluatorProxy is BenchmarkEvalProxy through an Evaluator, whose
// result is a view into its arena (no copy of the decision).
func BenchmarkEvaluatorProxy(b *testing.B) {
	p := loadPlan(b, "proxy")
	data, err := ParseJSON(proxyData(b, 1_000))
	if err != nil {
		b.Fatal(err)
	}
	e := p.NewEvaluator()
	for i, in := range proxyInputs {
		input := mustParse(b, in)
		b.Run(fmt.Sprintf("req=%d", i), func(b *testing.B) {
			benchDecision(b, e.Eval, input, data)
		})
	}
}

// benchDecision measures one proxy decision through eval (Program.Eval or Evaluator.Eval), after
// checking that it allows: every benchmark input names federated domains only.
func benchDecision(b *testing.B, eval func(string, Value, Value, ...EvalOption) (Value, bool, error), input, data Value) {
	res, ok, err := eval("tim/proxy/decision", input, data)
	if err != nil || !ok {
		b.Fatalf("eval: %v %v", ok, err)
	}
	if allow, _ := res.Get("allow"); !Equal(allow, Bool(true)) {
		b.Fatalf("decision %s", mustJSON(res))
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuNanos()
	for range b.N {
		if _, _, err := eval("tim/proxy/decision", input, data); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}
