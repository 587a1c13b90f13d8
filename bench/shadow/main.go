// Command shadow measures what a shadow candidate (a second policy revision
// evaluated beside the one in force) costs per request in the compiled filter
// on the wazero host (proxyhost): the pass-through module, the filter with the
// real policy alone and the filter with a candidate revision are measured in
// alternating rounds on the same request shapes. The candidate is the same
// Rego with one rule changed (createRoom refuses any invitee), so the
// createRoom decisions differ and the others do not; the filter's own
// counters (tim_filter_shadow_evaluated, tim_filter_shadow_differ) are read
// back and checked against that.
//
//	go run ./bench/shadow -out build/bench/shadow.json
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/timfd/fachdienst/bench/internal/proc"
	"github.com/timfd/fachdienst/bench/internal/stream"
	"github.com/timfd/fachdienst/control/plancompile"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

type result struct {
	Scenario      string  `json:"scenario"`
	PassthroughNs float64 `json:"passthrough_ns_per_request"`
	FilterNs      float64 `json:"filter_ns_per_request"`
	CandidateNs   float64 `json:"filter_with_candidate_ns_per_request"`
	// ExtraNs is the candidate's cost above the filter alone; Ratio is
	// filter with candidate over filter alone.
	ExtraNs float64 `json:"candidate_extra_ns"`
	Ratio   float64 `json:"ratio_candidate_to_filter"`
	// Requests is what the candidate's VM was sent; Evaluated and Differ are
	// the filter's counters for it.
	Requests  int   `json:"candidate_requests"`
	Evaluated int64 `json:"shadow_evaluated"`
	Differ    int64 `json:"shadow_differ"`
}

type report struct {
	Host string `json:"host"`
	CPU  string `json:"cpu"`
	// LoadBefore and LoadAfter are /proc/loadavg: the machine is shared.
	LoadBefore string   `json:"load_average_before"`
	LoadAfter  string   `json:"load_average_after"`
	Candidate  string   `json:"candidate_change"`
	Rounds     int      `json:"rounds"`
	PerRound   int      `json:"requests_per_round"`
	Results    []result `json:"results"`
}

func main() {
	out := flag.String("out", "build/bench/shadow.json", "JSON report")
	n := flag.Int("n", 20_000, "requests per round and configuration")
	rounds := flag.Int("rounds", 5, "alternating rounds; each configuration's best round is kept")
	flag.Parse()
	if *n < 1 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench/shadow: -n and -rounds must be at least 1")
		os.Exit(2)
	}
	if err := run(*out, *n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/shadow:", err)
		os.Exit(1)
	}
}

type scenario struct {
	name    string
	role    string
	headers [][2]string
	body    []byte
	// unique: "{n}" in path and body becomes a number of its own per request.
	unique bool
	// differs: the candidate decides this request otherwise.
	differs bool
}

var scenarios = []scenario{
	{name: "client_get_sync", role: "client", headers: [][2]string{{":method", "GET"}, {":path", "/_matrix/client/v3/sync?since=s1"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"authorization", "Bearer abc"}}},
	{name: "client_send_new_txn", role: "client", unique: true, headers: [][2]string{{":method", "PUT"}, {":path", "/_matrix/client/v3/rooms/!room:home.example.de/send/m.room.encrypted/txn{n}"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"authorization", "Bearer abc"}}},
	{name: "createroom_one_invitee", role: "client", differs: true, headers: [][2]string{{":method", "POST"}, {":path", "/_matrix/client/v3/createRoom"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"content-type", "application/json"}}, body: []byte(`{"preset":"private_chat","invite":["@bob:d500.example.de"],"is_direct":true}`)},
	{name: "federation_send_new_txn", role: "federation", unique: true, headers: [][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/{n}"}, {":authority", "home.example.de:8448"}, {"authorization", `X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`}}, body: []byte(`{"pdus":[]}`)},
}

// The candidate's one changed rule: createRoom with any invitee is refused
// (in force: with more than one).
const (
	ruleInForce   = "input.invitees[1] # more than one invitee, without counting them"
	ruleCandidate = "input.invitees[0] # candidate: any invitee"
)

func run(out string, n, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-shadow")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fpath, err := proxyhost.BuildModule("TIM_FILTER_WASM", "./wasm/cmd/tim-filter", dir)
	if err != nil {
		return err
	}
	ppath, err := proxyhost.BuildModule("TIM_PASSTHROUGH_WASM", "./wasm/cmd/passthrough", dir)
	if err != nil {
		return err
	}
	fw, err := os.ReadFile(fpath)
	if err != nil {
		return err
	}
	pw, err := os.ReadFile(ppath)
	if err != nil {
		return err
	}

	inForce, candidate, err := policyDocs(ctx)
	if err != nil {
		return err
	}
	pki, err := fedlisttest.NewPKI("BP256R1", fedlisttest.Options{})
	if err != nil {
		return err
	}
	domains := fedlisttest.Numbered(1000)
	jws, err := pki.Sign(fedlisttest.Payload(1, domains))
	if err != nil {
		return err
	}

	rep := report{Host: "proxyhost (wazero)", CPU: cpuModel(), LoadBefore: proc.LoadAvg(), Candidate: "createRoom: " + ruleInForce + " → " + ruleCandidate, Rounds: rounds, PerRound: n}
	fmt.Printf("cpu: %s; %d rounds of %d requests per configuration; list of %d domains\n", rep.CPU, rounds, n, len(domains))
	for _, sc := range scenarios {
		r, err := measure(ctx, sc, n, rounds, [3]setup{
			{wasm: pw},
			{wasm: fw, pki: pki, jws: jws, policy: inForce},
			{wasm: fw, pki: pki, jws: jws, policy: candidate},
		})
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		rep.Results = append(rep.Results, r)
		fmt.Printf("%-24s pass-through %6.0f ns/req, filter %7.0f ns/req, filter+candidate %7.0f ns/req: candidate +%6.0f ns (×%.2f); differing decisions %d of %d\n",
			sc.name, r.PassthroughNs, r.FilterNs, r.CandidateNs, r.ExtraNs, r.Ratio, r.Differ, r.Evaluated)
	}
	rep.LoadAfter = proc.LoadAvg()
	fmt.Printf("load average: %s before, %s after\n", rep.LoadBefore, rep.LoadAfter)
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// policyDocs returns the policy document in force (the real policy over the
// default data) and the same with a candidate whose one rule is changed.
func policyDocs(ctx context.Context) (inForce, withCandidate []byte, err error) {
	modules := map[string]string{}
	err = fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := fs.ReadFile(policies.FS, path)
		modules[path] = string(src)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	cur, err := plancompile.Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		return nil, nil, err
	}
	if strings.Count(modules["proxy.rego"], ruleInForce) != 1 {
		return nil, nil, fmt.Errorf("proxy.rego: the rule %q to change is not there once", ruleInForce)
	}
	modules["proxy.rego"] = strings.Replace(modules["proxy.rego"], ruleInForce, ruleCandidate, 1)
	cand, err := plancompile.CompileModules(ctx, modules, policies.ProxyDecision)
	if err != nil {
		return nil, nil, fmt.Errorf("candidate: %w", err)
	}
	// The operator's data over the defaults (the endpoint tables among them).
	var data map[string]any
	raw, err := fs.ReadFile(policies.FS, "data.json")
	if err == nil {
		err = json.Unmarshal(raw, &data)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("policies/data.json: %v", err)
	}
	cfg, _ := data["config"].(map[string]any)
	if cfg == nil {
		return nil, nil, fmt.Errorf("policies/data.json: no config")
	}
	cfg["own_domains"] = map[string]any{"home.example.de": true}
	cfg["client_ids"] = map[string]any{"enforce": true, "approved": map[string]any{"tim-client-1.0": true}}

	inForce, _ = json.Marshal(map[string]any{"revision": cur.Revision, "plan": json.RawMessage(cur.Plan), "data": data})
	withCandidate, _ = json.Marshal(map[string]any{"revision": cur.Revision, "plan": json.RawMessage(cur.Plan), "data": data,
		"shadow": map[string]any{"revision": cand.Revision, "plan": json.RawMessage(cand.Plan), "data": data}})
	return inForce, withCandidate, nil
}

// setup is one configuration: a module, and for the filter its list and
// policy document.
type setup struct {
	wasm   []byte
	pki    *fedlisttest.PKI
	jws    []byte
	policy []byte
}

func (s setup) start(ctx context.Context, role string) (*proxyhost.VM, *proxyhost.Runtime, error) {
	if s.pki == nil {
		return stream.Start(ctx, s.wasm, nil, nil, nil)
	}
	return stream.Start(ctx, s.wasm, stream.Config(role, s.pki.RootPEM()), s.policy, s.jws)
}

// measure runs the scenario on the three configurations (pass-through,
// filter, filter with candidate), each on its own VM, in alternating rounds,
// and keeps each one's best round: the machine is shared, other load only
// adds to a round, and alternating lets the three see the same load.
func measure(ctx context.Context, sc scenario, n, rounds int, setups [3]setup) (result, error) {
	var vms [3]*proxyhost.VM
	var rts [3]*proxyhost.Runtime
	for i, s := range setups {
		vm, rt, err := s.start(ctx, sc.role)
		if err != nil {
			return result{}, err
		}
		defer rt.Close(ctx)
		vms[i], rts[i] = vm, rt
	}
	best := [3]float64{math.Inf(1), math.Inf(1), math.Inf(1)}
	sent := 0
	seq := 0
	for range rounds {
		for i, vm := range vms {
			runtime.GC()
			start := time.Now()
			for range n {
				seq++
				if err := oneRequest(vm, sc, seq); err != nil {
					return result{}, fmt.Errorf("configuration %d: %w", i, err)
				}
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(n)
			best[i] = min(best[i], ns)
			vm.ClearLogs() // the candidate logs each differing decision
			if i == 2 {
				sent += n
			}
		}
	}
	// The tick adds the VM's shadow counts to the metrics.
	if err := vms[2].Tick(); err != nil {
		return result{}, err
	}
	evaluated, _ := rts[2].Counter("tim_filter_shadow_evaluated")
	differ, _ := rts[2].Counter("tim_filter_shadow_differ")
	want := int64(0)
	if sc.differs {
		want = evaluated
	}
	if evaluated != int64(sent) || differ != want {
		return result{}, fmt.Errorf("filter counted %d differing decisions of %d evaluated, want %d of %d", differ, evaluated, want, sent)
	}
	r := result{Scenario: sc.name, PassthroughNs: best[0], FilterNs: best[1], CandidateNs: best[2],
		ExtraNs: best[2] - best[1], Ratio: best[2] / best[1], Requests: sent, Evaluated: evaluated, Differ: differ}
	return r, nil
}

// oneRequest sends one request (number n for unique scenarios) and checks
// that it passed: the decision in force is applied, the candidate's never.
func oneRequest(vm *proxyhost.VM, sc scenario, n int) error {
	headers, body := sc.headers, sc.body
	if sc.unique {
		headers, body = stream.Numbered(sc.headers, sc.body, n)
	}
	return stream.Pass(vm, headers, body)
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
