//go:build !wasip1

package filter

import (
	"os"
	"testing"

	"github.com/timfd/fachdienst/wasm/fedlist"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// BenchmarkDecide measures building the input and evaluating the policy
// natively (no host), for a client-server GET.
func BenchmarkDecide(b *testing.B) {
	plan, err := os.ReadFile("testdata/proxy-plan.json")
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile("testdata/policy-data.json")
	if err != nil {
		b.Fatal(err)
	}
	prog, err := planvm.Load(plan)
	if err != nil {
		b.Fatal(err)
	}
	d, err := planvm.ParseJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	l := &fedlist.List{Version: 1, Domains: map[string]fedlist.Entry{"example.de": {}}}
	p := &plugin{cfg: &Config{Direction: "client"}, policy: &Policy{Program: prog, Data: d}, list: &listState{list: l}}
	p.rebuildData()
	s := &stream{p: p, f: facts{method: "GET", path: "/_matrix/client/v3/sync", host: "matrix.home.example.de", hostPort: "matrix.home.example.de", clientID: "tim-client-1.0"}}
	_ = s.f.segs.ParsePath(s.f.path)
	s.f.route = defaultRouter("client").Route("GET", &s.f.segs)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		in := s.input(false)
		res, ok, err := prog.Eval(Entrypoint, in, p.data)
		if err != nil || !ok {
			b.Fatal(err)
		}
		if dec, _ := parseDecision(res); !dec.allow {
			b.Fatal("denied")
		}
	}
}

// BenchmarkInput measures building the input document alone.
func BenchmarkInput(b *testing.B) {
	p := &plugin{cfg: &Config{Direction: "client"}}
	s := &stream{p: p, f: facts{method: "GET", path: "/_matrix/client/v3/sync", host: "matrix.home.example.de", hostPort: "matrix.home.example.de", clientID: "tim-client-1.0"}}
	_ = s.f.segs.ParsePath(s.f.path)
	s.f.route = defaultRouter("client").Route("GET", &s.f.segs)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = s.input(false)
	}
}
