//go:build !wasip1

package filter

import (
	"testing"
)

// BenchmarkDecide measures building the input and evaluating the policy
// natively (no host), for a client-server GET.
func BenchmarkDecide(b *testing.B) {
	p := benchPlugin(b, "client")
	prog := p.policy.Program
	s := &stream{p: p, f: facts{method: "GET", path: "/_matrix/client/v3/sync", host: "matrix.home.example.de", hostPort: "matrix.home.example.de", clientID: "tim-client-1.0"}}
	_ = s.f.segs.ParsePath(s.f.path)
	s.f.route = p.router.Route("GET", &s.f.segs)
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
