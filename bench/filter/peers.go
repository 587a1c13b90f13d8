package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/timfd/fachdienst/bench/internal/stream"
	"github.com/timfd/fachdienst/conformance"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/filter"
)

// The ext_authz pattern: Envoy asks an authorization server per request, here
// OPA's evaluator (the same Rego modules and data the plan VM runs) behind
// net/http on loopback. The request carries the policy input the filter
// would build (filter.InputMaker), so the server does less than OPA's Envoy
// plugin does (which builds its input from the CheckRequest's headers
// itself): the figure flatters the peer. Per request: one HTTP/1.1 POST on a
// kept-alive connection, OPA's evaluation, the JSON answer.

// extAuthz is an OPA decision server on loopback.
type extAuthz struct {
	srv    *http.Server
	url    string
	client *http.Client
}

func startExtAuthz(ctx context.Context, data []byte) (*extAuthz, error) {
	modules, err := conformance.PolicyModules(policies.FS)
	if err != nil {
		return nil, err
	}
	q, err := conformance.PrepareOPA(ctx, modules, policies.ProxyDecision, data)
	if err != nil {
		return nil, err
	}
	pq := q.Prepared()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		in, err := conformance.ParseInput(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rs, err := pq.Eval(r.Context(), rego.EvalParsedInput(in))
		if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
			http.Error(w, fmt.Sprint("no decision: ", err), 500)
			return
		}
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(rs[0].Expressions[0].Value)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &extAuthz{srv: srv, url: "http://" + ln.Addr().String() + "/v1/decision",
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}, nil
}

func (e *extAuthz) close() { _ = e.srv.Close() }

// ask sends one input and checks that the answer allows.
func (e *extAuthz) ask(input []byte) error {
	resp, err := e.client.Post(e.url, "application/json", bytes.NewReader(input))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var d struct {
		Allow bool `json:"allow"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return err
	}
	if resp.StatusCode != 200 || !d.Allow {
		return fmt.Errorf("ext_authz: status %d allow %v for %s", resp.StatusCode, d.Allow, input)
	}
	return nil
}

// inputs are the input documents of the requests.
func inputs(role string, data []byte, reqs []request) ([][]byte, error) {
	m, err := filter.NewInputMaker(role, data)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(reqs))
	for i, r := range reqs {
		if out[i], err = m.Input(r.headers, r.body); err != nil {
			return nil, fmt.Errorf("%s %s: %w", stream.Header(r.headers, ":method"), stream.Header(r.headers, ":path"), err)
		}
	}
	return out, nil
}

// extAuthzNs is the best mean round trip per request over rounds of the
// inputs.
func extAuthzNs(e *extAuthz, ins [][]byte) (float64, error) {
	for _, in := range ins[:min(len(ins), 200)] {
		if err := e.ask(in); err != nil {
			return 0, err
		}
	}
	best := math.Inf(1)
	for round := 0; round < 3; round++ {
		t0 := time.Now()
		for _, in := range ins {
			if err := e.ask(in); err != nil {
				return 0, err
			}
		}
		best = min(best, float64(time.Since(t0).Nanoseconds())/float64(len(ins)))
	}
	return best, nil
}

// peerData is the data document the filter evaluates with: the policy's
// data and the list's domains under federation.domains.
func peerData(data map[string]any, n int) ([]byte, error) {
	domains := make(map[string]any, n)
	for i := 0; i < n; i++ {
		domains[fmt.Sprintf("d%d.example.de", i)] = map[string]any{"isInsurance": false}
	}
	doc := map[string]any{}
	for k, v := range data {
		doc[k] = v
	}
	doc["federation"] = map[string]any{"domains": domains}
	return json.Marshal(doc)
}

// measurePeers asks the ext_authz peer the decisions of every scenario and
// mix (1 000 domains) and sets the ratios ours ÷ theirs, ours being the
// filter's overhead above pass-through in wazero.
func measurePeers(ctx context.Context, rep *report, data map[string]any) error {
	dataJSON, err := peerData(data, 1000)
	if err != nil {
		return err
	}
	e, err := startExtAuthz(ctx, dataJSON)
	if err != nil {
		return err
	}
	defer e.close()
	const name = "ext_authz: OPA over loopback HTTP"
	rep.Peers = map[string]map[string]float64{name: {}}
	rep.PeerNs = map[string]map[string]float64{name: {}}
	for _, sc := range scenarios {
		var ours float64
		for _, r := range rep.Results {
			if r.Scenario == sc.name && r.Domains == 1000 {
				ours = r.OverheadNs
			}
		}
		if ours == 0 {
			continue
		}
		reqs := requests(sc, 2000, 2_000_000)
		ins, err := inputs(sc.role, dataJSON, reqs)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		theirs, err := extAuthzNs(e, ins)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		rep.PeerNs[name][sc.name] = theirs
		rep.Peers[name][sc.name] = ours / theirs
		fmt.Printf("%-24s ext_authz (OPA over loopback HTTP) %8.0f ns/req; ours ÷ theirs %.3f\n", sc.name, theirs, ours/theirs)
	}
	for _, m := range mixes {
		rs := rep.Mixes[m.name].Results
		if len(rs) == 0 {
			continue
		}
		reqs, _ := m.sequence(4000)
		ins, err := inputs(m.role, dataJSON, reqs)
		if err != nil {
			return fmt.Errorf("mix %s: %w", m.name, err)
		}
		theirs, err := extAuthzNs(e, ins)
		if err != nil {
			return fmt.Errorf("mix %s: %w", m.name, err)
		}
		rep.PeerNs[name]["mix_"+m.name] = theirs
		rep.Peers[name]["mix_"+m.name] = rs[0].OverheadMeanNs / theirs
		fmt.Printf("mix %-20s ext_authz (OPA over loopback HTTP) %8.0f ns/req; ours ÷ theirs %.3f\n", m.name, theirs, rs[0].OverheadMeanNs/theirs)
	}
	return nil
}

const opaWasmPeer = "OPA's evaluator in a wasip1 module (proxyhost)"

// measureOPAWasm runs the scenarios and mixes (1 000 domains) through the
// opawasm module in proxyhost and sets the ratios ours ÷ theirs, both per
// request above the pass-through.
func measureOPAWasm(ctx context.Context, rep *report, dir string, data map[string]any) error {
	path, err := proxyhost.BuildModule("TIM_OPAWASM_WASM", "./bench/filter/opawasm", dir)
	if err != nil {
		return err
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dataJSON, err := peerData(data, 1000)
	if err != nil {
		return err
	}
	modules, err := conformance.PolicyModules(policies.FS)
	if err != nil {
		return err
	}
	if rep.Peers == nil {
		rep.Peers, rep.PeerNs = map[string]map[string]float64{}, map[string]map[string]float64{}
	}
	rep.Peers[opaWasmPeer], rep.PeerNs[opaWasmPeer] = map[string]float64{}, map[string]float64{}
	rep.OPAWasmBytes = len(wasm)
	for _, role := range []string{"client", "federation"} {
		cfg, _ := json.Marshal(map[string]any{"role": role, "query": conformance.QueryOf(policies.ProxyDecision), "modules": modules, "data": json.RawMessage(dataJSON)})
		rt, err := proxyhost.NewRuntime(ctx, wasm, proxyhost.Options{})
		if err != nil {
			return err
		}
		vm, err := rt.NewVM(ctx)
		if err != nil {
			rt.Close(ctx)
			return err
		}
		if ok, err := vm.StartPlugin(cfg); err != nil || !ok {
			rt.Close(ctx)
			return fmt.Errorf("opawasm start: %v %v", err, vm.Logs(proxyhost.LogCritical))
		}
		run := func(reqs []request) (float64, error) {
			best := math.Inf(1)
			for round := 0; round < 3; round++ {
				runtime.GC()
				t0 := time.Now()
				for _, r := range reqs {
					if err := oneReq(vm, r); err != nil {
						return 0, err
					}
				}
				vm.ClearLogs()
				best = min(best, float64(time.Since(t0).Nanoseconds())/float64(len(reqs)))
			}
			return best, nil
		}
		for _, sc := range scenarios {
			if sc.role != role {
				continue
			}
			var ours, pass float64
			for _, r := range rep.Results {
				if r.Scenario == sc.name && r.Domains == 1000 {
					ours, pass = r.OverheadNs, r.PassthroughNs
				}
			}
			if ours == 0 {
				continue
			}
			reqs := make([]request, 300)
			for i := range reqs {
				hs, b := numbered(sc, 3_000_000+i)
				reqs[i] = request{hs, b}
			}
			ns, err := run(reqs)
			if err != nil {
				rt.Close(ctx)
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			theirs := ns - pass
			rep.PeerNs[opaWasmPeer][sc.name] = theirs
			rep.Peers[opaWasmPeer][sc.name] = ours / theirs
			fmt.Printf("%-24s OPA in Wasm %8.0f ns/req above pass-through; ours ÷ theirs %.3f\n", sc.name, theirs, ours/theirs)
		}
		for _, m := range mixes {
			rs := rep.Mixes[m.name].Results
			if m.role != role || len(rs) == 0 {
				continue
			}
			reqs, _ := m.sequence(1000)
			ns, err := run(reqs)
			if err != nil {
				rt.Close(ctx)
				return fmt.Errorf("mix %s: %w", m.name, err)
			}
			theirs := ns - rs[0].PassthroughMeanNs
			rep.PeerNs[opaWasmPeer]["mix_"+m.name] = theirs
			rep.Peers[opaWasmPeer]["mix_"+m.name] = rs[0].OverheadMeanNs / theirs
			fmt.Printf("mix %-20s OPA in Wasm %8.0f ns/req above pass-through; ours ÷ theirs %.3f\n", m.name, theirs, rs[0].OverheadMeanNs/theirs)
		}
		rt.Close(ctx)
	}
	return nil
}
