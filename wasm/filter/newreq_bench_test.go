//go:build !wasip1

package filter

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/timfd/fachdienst/wasm/fedlist"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// BenchmarkNewRequest runs the filter's work for a request whose input is
// new (a send with a new transaction id, a federation transaction with a new
// id) natively, without the host: header values, header key and lookup,
// facts, facts key and lookup, input, evaluation, decision, store. Its CPU
// profile (-cpuprofile) shows where a new request's work goes.
func BenchmarkNewRequest(b *testing.B) {
	for _, bc := range []struct {
		name, role string
		hdr        [][2]string
	}{
		{"client_send", "client", [][2]string{{":method", "PUT"}, {":path", "/_matrix/client/v3/rooms/!room:home.example.de/send/m.room.encrypted/txn{n}"}, {":authority", "matrix.home.example.de"},
			{"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"authorization", "Bearer abc"}}},
		{"federation_send", "federation", [][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/{n}"}, {":authority", "home.example.de:8448"},
			{"authorization", `X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := benchPlugin(b, bc.role)
			hs := make([][2]string, len(bc.hdr))
			var paths []string
			for i := 0; i < 4096; i++ {
				for _, h := range bc.hdr {
					if h[0] == ":path" {
						paths = append(paths, replaceN(h[1], strconv.Itoa(i)))
					}
				}
			}
			s := &stream{p: p}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(hs, bc.hdr)
				for j := range hs {
					if hs[j][0] == ":path" {
						hs[j][1] = paths[i%len(paths)]
					}
				}
				var hv headerValues
				hv.collect(hs)
				if k, ok := p.memo.rawKeyOf(&hv, false); ok {
					p.memo.lookup(k, p.memo.opaque)
				}
				if err := s.f.fromValues(&hv, p.router, &p.hosts); err != nil {
					b.Fatal(err)
				}
				k, _ := p.memo.keyOf(&s.f, false)
				p.memo.lookup(k, p.memo.opaque)
				in := s.input(false)
				res, ok, err := p.eval.Eval(Entrypoint, in, p.data)
				if err != nil || !ok {
					b.Fatal(err)
				}
				if d, _ := parseDecision(res); !d.allow {
					b.Fatalf("denied: %+v", d)
				}
			}
		})
	}
}

func replaceN(s, n string) string {
	for i := 0; i+3 <= len(s); i++ {
		if s[i:i+3] == "{n}" {
			return s[:i] + n + s[i+3:]
		}
	}
	return s
}

// benchPlugin is a plugin with the test policy (with the default endpoint
// tables) and a list holding d500.example.de.
func benchPlugin(b *testing.B, role string) *plugin {
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
	// The endpoint tables operators start from, as the policy reads them.
	var doc, def map[string]any
	defRaw, err := os.ReadFile("../../policies/data.json")
	if err != nil || json.Unmarshal(data, &doc) != nil || json.Unmarshal(defRaw, &def) != nil {
		b.Fatal("policy data", err)
	}
	doc["config"].(map[string]any)["endpoints"] = def["config"].(map[string]any)["endpoints"]
	data, _ = json.Marshal(doc)
	d, err := planvm.ParseJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	l := &fedlist.List{Version: 1, Domains: map[string]fedlist.Entry{"d500.example.de": {}, "example.de": {}}}
	p := &plugin{cfg: &Config{Direction: role}, policy: &Policy{Program: prog, Data: d}, list: &listState{list: l}, memo: newMemo()}
	p.rebuildData()
	p.eval = prog.NewEvaluator()
	p.router = defaultRouter(role)
	return p
}
