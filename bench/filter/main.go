// Command filter measures the messenger-proxy filter on the compiled module
// in the wazero host (proxyhost), beside the pass-through filter on the same
// host: ns per request for a client-server GET, a server-server request with
// origin check and a createRoom with one invitee, each with federation lists
// of 1 000 and 100 000 domains; module sizes; guest memory after 10 000 and
// after 1 000 000 requests.
//
//	go run ./bench/filter -out build/bench/filter.json
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/bench/internal/proc"
	"github.com/timfd/fachdienst/bench/internal/stream"
	"github.com/timfd/fachdienst/control/plancompile"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

type result struct {
	Scenario       string  `json:"scenario"`
	Domains        int     `json:"domains"`
	FilterNs       float64 `json:"filter_ns_per_request"`
	PassthroughNs  float64 `json:"passthrough_ns_per_request"`
	OverheadNs     float64 `json:"overhead_ns"`
	TargetOverhead float64 `json:"target_overhead_ns"`
	// V8 figures (Node), 0 when node is not available.
	V8FilterNs      float64 `json:"v8_filter_ns_per_request,omitempty"`
	V8PassthroughNs float64 `json:"v8_passthrough_ns_per_request,omitempty"`
	V8OverheadNs    float64 `json:"v8_overhead_ns,omitempty"`
	// Instructions per request (valgrind, host and guest; 0 when not
	// counted): the filter's, the pass-through's and the difference.
	Instructions            float64 `json:"instructions_above_passthrough,omitempty"`
	FilterInstructions      float64 `json:"filter_instructions,omitempty"`
	PassthroughInstructions float64 `json:"passthrough_instructions,omitempty"`
}

// isolated is the filter's own cost: the same filter with a trivial plan
// (decision := {"allow": true}), so that everything but the policy's work
// (host calls, facts, input, yield, decision handling) is measured.
type isolated struct {
	Scenario      string  `json:"scenario"`
	AllowPlanNs   float64 `json:"allow_plan_ns_per_request"`
	PassthroughNs float64 `json:"passthrough_ns_per_request"`
	OverheadNs    float64 `json:"filter_overhead_ns"`
}

type report struct {
	Host string `json:"host"`
	// CPU is the model /proc/cpuinfo names, Load the load average at the
	// start: wall-clock figures only compare on the same CPU and load.
	CPU  string `json:"cpu"`
	Load string `json:"load_average"`
	// Mixes: the traffic mixes (mix.go) with their proportions and figures.
	Mixes map[string]*mixReport `json:"mix"`
	// Peers: ours ÷ theirs per scenario and mix (per request above
	// pass-through), and the peers' own ns per request.
	Peers  map[string]map[string]float64 `json:"peers,omitempty"`
	PeerNs map[string]map[string]float64 `json:"peer_ns,omitempty"`
	// OPAWasmBytes is the size of the OPA-in-Wasm peer module.
	OPAWasmBytes int `json:"opa_wasm_module_bytes,omitempty"`
	// CountN is the N of the instruction counts (N and 3N requests).
	CountN           int                `json:"instruction_count_n,omitempty"`
	Results          []result           `json:"results"`
	FilterOnly       []isolated         `json:"filter_only"`
	Ratio100kTo1k    map[string]float64 `json:"ratio_100k_to_1k"`
	FilterBytes      int                `json:"filter_module_bytes"`
	PassthroughBytes int                `json:"passthrough_module_bytes"`
	MemAfter10k      uint32             `json:"guest_memory_after_10k"`
	MemAfter1M       uint32             `json:"guest_memory_after_1m"`
	// MemCurve is the guest memory at checkpoints on the way (requests →
	// bytes): flat means it stops growing, not only that the end is small.
	MemCurve map[int]uint32 `json:"guest_memory_by_requests"`
	// MemList100k is the guest memory of a VM with a list of 100 000
	// domains installed, after 10 000 requests.
	MemList100k  uint32 `json:"guest_memory_list_100k"`
	HeapRequests int    `json:"heap_requests"`
}

func main() {
	out := flag.String("out", "build/bench/filter.json", "JSON report")
	heapN := flag.Int("heap-requests", 1_000_000, "requests for the heap check")
	only := flag.Bool("filter-only", false, "measure only the filter's own cost (trivial allow plan vs pass-through) and the module sizes")
	flag.IntVar(&countN, "count-n", 1000, "instruction counts over N and 3N requests with valgrind; 0 skips them")
	flag.BoolVar(&noHeap, "no-heap", false, "skip the allow-plan isolation, the list memory and the heap run (scenarios, mixes, peers and counts only)")
	child := flag.String("count-child", "", "internal: run a counting job under valgrind")
	flag.BoolVar(&countOnly, "count-only", false, "only the instruction counts (1 000 domains), printed and written")
	flag.StringVar(&profileDir, "profile", "", "profile the guest on V8 for -profile-scenarios and write the profiles to this directory (nothing is measured)")
	flag.StringVar(&profileScenarios, "profile-scenarios", "client_send_new,federation_send_new,createroom_new_invitee", "scenarios to profile")
	flag.Parse()
	if *child != "" {
		if err := countChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, "bench/filter:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*out, *heapN, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench/filter:", err)
		os.Exit(1)
	}
}

var (
	profileDir string
	countN     int
	noHeap     bool
	countOnly  bool
)

type scenario struct {
	name    string
	role    string
	headers [][2]string
	body    []byte
	target  float64
	// unique: "{n}" in the path and body becomes a number that differs
	// from request to request, as transaction ids, rooms and invitees do,
	// so that no request repeats an earlier one's input (no header key
	// answers; the facts key does when the policy's observations hold).
	unique bool
}

const (
	fedAuth = `X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`
	pduBody = `{"origin":"d500.example.de","origin_server_ts":1700000000000,"pdus":[{"type":"m.room.encrypted","room_id":"!room1:home.example.de","sender":"@p1:d500.example.de","content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEnAA"},"depth":{n},"prev_events":["$a"],"auth_events":["$b"],"hashes":{"sha256":"h"},"signatures":{}}],"edus":[]}`
)

var scenarios = []scenario{
	// Requests that repeat: from the second on the decision memo answers.
	{name: "client_get", role: "client", headers: [][2]string{{":method", "GET"}, {":path", "/_matrix/client/v3/sync?since=s1"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"authorization", "Bearer abc"}}, target: 3000},
	// A server's profile query: signed, repeated (a /send never repeats its
	// transaction id, so it is measured new only).
	{name: "federation_query", role: "federation", headers: [][2]string{{":method", "GET"}, {":path", "/_matrix/federation/v1/query/profile?user_id=@u1:home.example.de"}, {":authority", "home.example.de:8448"}, {"authorization", fedAuth}}, target: 3000},
	{name: "createroom_one_invitee", role: "client", headers: [][2]string{{":method", "POST"}, {":path", "/_matrix/client/v3/createRoom"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"content-type", "application/json"}}, body: []byte(`{"preset":"private_chat","invite":["@bob:d500.example.de"],"is_direct":true}`), target: 25000},
	// Requests that are new every time: no header key answers them; the
	// facts key does, by what the policy observed of path and invitee.
	{name: "client_send_new", role: "client", unique: true, headers: [][2]string{{":method", "PUT"}, {":path", "/_matrix/client/v3/rooms/!room:home.example.de/send/m.room.encrypted/txn{n}"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"authorization", "Bearer abc"}}, body: []byte(`{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEnAA"}`)},
	{name: "federation_send_new", role: "federation", unique: true, headers: [][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/{n}"}, {":authority", "home.example.de:8448"}, {"authorization", fedAuth}}, body: []byte(pduBody)},
	{name: "createroom_new_invitee", role: "client", unique: true, headers: [][2]string{{":method", "POST"}, {":path", "/_matrix/client/v3/createRoom"}, {":authority", "matrix.home.example.de"}, {"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"content-type", "application/json"}}, body: []byte(`{"preset":"private_chat","invite":["@bob{n}:d500.example.de"],"is_direct":true}`), target: 25000},
}

// allowPolicy is a policy whose decision is a constant allow: with it the
// filter's figure minus the pass-through's is the filter's own overhead.
const allowPolicy = "package tim.proxy\n\ndecision := {\"allow\": true, \"check\": \"default\"}\n"

func run(out string, heapN int, filterOnly bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-filter")
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
	fw, _ := os.ReadFile(fpath)
	pw, _ := os.ReadFile(ppath)
	rep := report{Host: "proxyhost (wazero " + "v1.12" + ")", CPU: cpuModel(), Load: proc.LoadAvg(), FilterBytes: len(fw), PassthroughBytes: len(pw), Ratio100kTo1k: map[string]float64{}, HeapRequests: heapN, MemCurve: map[int]uint32{}}

	res, err := plancompile.Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		return err
	}
	pki, err := fedlisttest.NewPKI("ES256", fedlisttest.Options{})
	if err != nil {
		return err
	}
	data, err := benchData()
	if err != nil {
		return err
	}
	policyDoc, _ := json.Marshal(map[string]any{"revision": "bench", "plan": json.RawMessage(res.Plan), "data": data})
	allowRes, err := plancompile.CompileModules(ctx, map[string]string{"allow.rego": allowPolicy}, policies.ProxyDecision)
	if err != nil {
		return err
	}
	allowDoc, _ := json.Marshal(map[string]any{"revision": "allow", "plan": json.RawMessage(allowRes.Plan), "data": data})

	listJWS, err := pki.Sign(fedlisttest.Payload(1, []fedlisttest.Domain{{Domain: "d500.example.de"}}))
	if err != nil {
		return err
	}
	if profileDir != "" {
		list1k, err := pki.Sign(fedlisttest.Payload(1, fedlisttest.Numbered(1000)))
		if err != nil {
			return err
		}
		return profileGuest(profileDir, list1k, policyDoc, map[string]string{
			"client": string(filterConfig(pki, "client")), "federation": string(filterConfig(pki, "federation"))})
	}
	if countOnly {
		rep.Mixes = map[string]*mixReport{}
		for _, m := range mixes {
			rep.Mixes[m.name] = &mixReport{Role: m.role, Proportions: m.proportions(), Source: mixSource, Results: []mixResult{{Mix: m.name, Domains: 1000}}}
		}
		for _, sc := range scenarios {
			rep.Results = append(rep.Results, result{Scenario: sc.name, Domains: 1000})
		}
		list1k, err := pki.Sign(fedlisttest.Payload(1, fedlisttest.Numbered(1000)))
		if err != nil {
			return err
		}
		if err := countAll(&rep, fpath, ppath, pki, list1k, policyDoc, dir); err != nil {
			return err
		}
		return writeReport(out, rep)
	}
	for _, sc := range scenarios {
		if noHeap {
			break
		}
		ns, passNs, err := measurePair(ctx, fw, pw, &filterSetup{pki: pki, jws: listJWS, policy: allowDoc}, sc)
		if err != nil {
			return fmt.Errorf("%s (allow plan): %w", sc.name, err)
		}
		r := isolated{Scenario: sc.name, AllowPlanNs: ns, PassthroughNs: passNs, OverheadNs: ns - passNs}
		rep.FilterOnly = append(rep.FilterOnly, r)
		fmt.Printf("%-24s allow plan: filter %8.0f ns/req, pass-through %6.0f ns/req, filter overhead %6.0f ns\n",
			sc.name, r.AllowPlanNs, r.PassthroughNs, r.OverheadNs)
	}
	if filterOnly {
		fmt.Printf("module sizes: tim-filter %d bytes (target ≤ 6 MB), passthrough %d bytes\n", rep.FilterBytes, rep.PassthroughBytes)
		return writeReport(out, rep)
	}

	rep.Mixes = map[string]*mixReport{}
	for _, m := range mixes {
		rep.Mixes[m.name] = &mixReport{Role: m.role, Proportions: m.proportions(), Source: mixSource}
	}
	v8pass, v8err := runV8(ppath, nil, nil, "", scenarios, mixes)
	if v8err != nil {
		fmt.Println("V8 (node) figures skipped:", v8err)
	}
	byName := map[string]map[int]float64{}
	var list1k []byte
	for _, n := range []int{1000, 100_000} {
		jws, err := pki.Sign(fedlisttest.Payload(1, fedlisttest.Numbered(n)))
		if err != nil {
			return err
		}
		if n == 1000 {
			list1k = jws
		}
		v8 := v8Result{scenarios: map[string]float64{}, mixes: map[string][2]float64{}}
		if v8err == nil {
			for _, role := range []string{"client", "federation"} {
				var scs []scenario
				for _, sc := range scenarios {
					if sc.role == role {
						scs = append(scs, sc)
					}
				}
				var mxs []mix
				for _, m := range mixes {
					if m.role == role {
						mxs = append(mxs, m)
					}
				}
				m, err := runV8(fpath, jws, policyDoc, string(filterConfig(pki, role)), scs, mxs)
				if err != nil {
					return fmt.Errorf("V8 %s/%d: %w", role, n, err)
				}
				maps.Copy(v8.scenarios, m.scenarios)
				maps.Copy(v8.mixes, m.mixes)
			}
		}
		if n == 100_000 && !noHeap {
			if rep.MemList100k, err = listMemory(ctx, fw, &filterSetup{pki: pki, jws: jws, policy: policyDoc}); err != nil {
				return err
			}
			fmt.Printf("guest memory with %d domains installed: %d KiB\n", n, rep.MemList100k>>10)
		}
		setup := &filterSetup{pki: pki, jws: jws, policy: policyDoc}
		hitCost := map[string]float64{}
		for _, sc := range scenarios {
			ns, passNs, err := measurePair(ctx, fw, pw, setup, sc)
			if err != nil {
				return fmt.Errorf("%s/%d: %w", sc.name, n, err)
			}
			r := result{Scenario: sc.name, Domains: n, FilterNs: ns, PassthroughNs: passNs, OverheadNs: ns - passNs, TargetOverhead: sc.target}
			if sc.name == "client_get" || sc.name == "federation_query" {
				hitCost[sc.role] = r.OverheadNs
			}
			if v8err == nil {
				r.V8FilterNs, r.V8PassthroughNs = v8.scenarios[sc.name], v8pass.scenarios[sc.name]
				r.V8OverheadNs = r.V8FilterNs - r.V8PassthroughNs
				fmt.Printf("%-24s %6d domains: V8 filter %8.0f ns/req, V8 pass-through %6.0f ns/req, overhead %8.0f ns\n",
					sc.name, n, r.V8FilterNs, r.V8PassthroughNs, r.V8OverheadNs)
			}
			rep.Results = append(rep.Results, r)
			if byName[sc.name] == nil {
				byName[sc.name] = map[int]float64{}
			}
			byName[sc.name][n] = ns
			target := ""
			if sc.target > 0 {
				target = fmt.Sprintf(" (target ≤ %.0f)", sc.target)
			}
			fmt.Printf("%-24s %6d domains: filter %8.0f ns/req, pass-through %6.0f ns/req, overhead %8.0f ns%s\n",
				sc.name, n, ns, passNs, r.OverheadNs, target)
		}
		for _, m := range mixes {
			r, err := measureMix(ctx, fw, pw, setup, m)
			if err != nil {
				return fmt.Errorf("mix %s/%d: %w", m.name, n, err)
			}
			r.Domains = n
			if h := hitCost[m.role]; h > 0 {
				r.RatioToHit = r.OverheadMeanNs / h
			}
			if v, ok := v8.mixes[m.name]; ok {
				p := v8pass.mixes[m.name]
				r.V8FilterMeanNs, r.V8FilterP99Ns, r.V8PassthroughMeanNs, r.V8PassthroughP99Ns = v[0], v[1], p[0], p[1]
				r.V8OverheadMeanNs, r.V8OverheadP99Ns = v[0]-p[0], v[1]-p[1]
			}
			rep.Mixes[m.name].Results = append(rep.Mixes[m.name].Results, r)
			fmt.Printf("mix %-15s %6d domains: overhead mean %6.0f ns, p99 %6.0f ns (filter %6.0f / %6.0f, pass-through %6.0f / %6.0f), memo hit rate %.2f, %.1f× the memo-hit cost; V8 overhead mean %6.0f ns, p99 %6.0f ns\n",
				m.name, n, r.OverheadMeanNs, r.OverheadP99Ns, r.FilterMeanNs, r.FilterP99Ns, r.PassthroughMeanNs, r.PassthroughP99Ns, r.MemoHitRate, r.RatioToHit, r.V8OverheadMeanNs, r.V8OverheadP99Ns)
		}
	}
	for name, m := range byName {
		if m[1000] > 0 && m[100_000] > 0 {
			rep.Ratio100kTo1k[name] = m[100_000] / m[1000]
			fmt.Printf("%-24s 100k/1k ratio %.2f (target ≤ 1.2)\n", name, rep.Ratio100kTo1k[name])
		}
	}
	for _, m := range mixes {
		if rs := rep.Mixes[m.name].Results; len(rs) == 2 {
			rep.Ratio100kTo1k["mix_"+m.name] = rs[1].FilterMeanNs / rs[0].FilterMeanNs
		}
	}
	// The peers and the counts report what they could not measure and
	// leave the rest of the report standing.
	if err := measurePeers(ctx, &rep, data); err != nil {
		fmt.Println("ext_authz peer:", err)
	}
	if err := measureOPAWasm(ctx, &rep, dir, data); err != nil {
		fmt.Println("OPA-in-Wasm peer:", err)
	}
	if err := writeReport(out, rep); err != nil {
		return err
	}
	if countN > 0 {
		if err := countAll(&rep, fpath, ppath, pki, list1k, policyDoc, dir); err != nil {
			fmt.Println("instruction counts:", err)
		}
	}
	if noHeap {
		return writeReport(out, rep)
	}
	// Heap: guest memory after 10 000 and after heapN requests.
	setup := &filterSetup{pki: pki, policy: policyDoc, jws: listJWS}
	vm, rt, err := setup.start(ctx, fw, "client")
	if err != nil {
		return err
	}
	// A request that never repeats: the decision memo keeps evicting and storing.
	sc := scenarios[5]
	for i := 0; i < heapN; i++ {
		if err := oneRequest(vm, sc); err != nil {
			return err
		}
		if i == 10_000-1 {
			rep.MemAfter10k = vm.MemorySize()
		}
		if n := i + 1; n == 10_000 || n%max(heapN/8, 1) == 0 {
			rep.MemCurve[n] = vm.MemorySize()
		}
		if i%100_000 == 0 {
			vm.ClearLogs()
		}
	}
	rep.MemAfter1M = vm.MemorySize()
	rt.Close(ctx)
	fmt.Printf("guest memory: %d KiB after 10k requests, %d KiB after %d requests\n", rep.MemAfter10k>>10, rep.MemAfter1M>>10, heapN)
	fmt.Print("guest memory on the way:")
	for _, n := range slices.Sorted(maps.Keys(rep.MemCurve)) {
		fmt.Printf(" %dk: %d KiB", n/1000, rep.MemCurve[n]>>10)
	}
	fmt.Println()
	fmt.Printf("module sizes: tim-filter %d bytes (target ≤ 6 MB), passthrough %d bytes\n", rep.FilterBytes, rep.PassthroughBytes)

	return writeReport(out, rep)
}

func writeReport(out string, rep report) error {
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

type filterSetup struct {
	pki    *fedlisttest.PKI
	jws    []byte
	policy []byte
	config []byte // the plugin configuration; nil: filterConfig(pki, role)
}

func (s *filterSetup) start(ctx context.Context, wasm []byte, role string) (*proxyhost.VM, *proxyhost.Runtime, error) {
	if s == nil {
		return stream.Start(ctx, wasm, nil, nil, nil)
	}
	cfg := s.config
	if cfg == nil {
		cfg = filterConfig(s.pki, role)
	}
	return stream.Start(ctx, wasm, cfg, s.policy, s.jws)
}

func filterConfig(pki *fedlisttest.PKI, role string) []byte {
	return stream.Config(role, pki.RootPEM())
}

//go:embed v8host.mjs
var v8host []byte

// v8Result is what v8host.mjs reports: ns per request of each scenario and,
// under "mix:<name>", a mix's best mean and p99.
type v8Result struct {
	scenarios map[string]float64
	mixes     map[string][2]float64
}

// v8Flags are extra flags for node (the profiler's).
var v8Flags []string

// runV8 measures the scenarios and mixes on Node's V8 with v8host.mjs.
func runV8(wasmPath string, list, policy []byte, config string, scs []scenario, mxs []mix) (v8Result, error) {
	res := v8Result{scenarios: map[string]float64{}, mixes: map[string][2]float64{}}
	node, err := exec.LookPath("node")
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "bench-v8")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	type v8scenario struct {
		Name    string      `json:"name"`
		Headers [][2]string `json:"headers"`
		Body    []byte      `json:"body,omitempty"`
		Unique  bool        `json:"unique,omitempty"`
	}
	type v8mix struct {
		Name     string      `json:"name"`
		Segments [][]jsonReq `json:"segments"`
	}
	in := struct {
		Wasm       string       `json:"wasm"`
		Config     string       `json:"config"`
		Answers    any          `json:"answers"`
		Scenarios  []v8scenario `json:"scenarios"`
		Mixes      []v8mix      `json:"mixes"`
		Iterations int          `json:"iterations"`
	}{Wasm: wasmPath, Config: config, Answers: map[string][]byte{"list": list, "policy": policy}, Iterations: 20000}
	for _, sc := range scs {
		in.Scenarios = append(in.Scenarios, v8scenario{sc.name, sc.headers, sc.body, sc.unique})
	}
	for _, m := range mxs {
		vm := v8mix{Name: m.name}
		for _, seg := range m.segments() {
			vm.Segments = append(vm.Segments, jsonReqs(seg))
		}
		in.Mixes = append(in.Mixes, vm)
	}
	b, _ := json.Marshal(in)
	inPath, jsPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "v8host.mjs")
	if err := os.WriteFile(inPath, b, 0o644); err != nil {
		return res, err
	}
	if err := os.WriteFile(jsPath, v8host, 0o644); err != nil {
		return res, err
	}
	args := append(append([]string{"--no-warnings"}, v8Flags...), jsPath, inPath)
	cmd := exec.Command(node, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("node: %v: %s", err, stderr.String())
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(out, &raw); err != nil {
		return res, fmt.Errorf("node output %q: %v", out, err)
	}
	for k, v := range raw {
		if name, ok := strings.CutPrefix(k, "mix:"); ok {
			var m struct{ Mean, P99 float64 }
			if err := json.Unmarshal(v, &m); err != nil {
				return res, err
			}
			res.mixes[name] = [2]float64{m.Mean, m.P99}
			continue
		}
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return res, err
		}
		res.scenarios[k] = f
	}
	return res, nil
}

// seq numbers the requests of unique scenarios.
var seq int

func oneRequest(vm *proxyhost.VM, sc scenario) error {
	headers, body := sc.headers, sc.body
	if sc.unique {
		seq++
		headers, body = numbered(sc, seq)
	}
	return oneReq(vm, request{headers, body})
}

// oneReq runs one request through the VM; it must pass.
func oneReq(vm *proxyhost.VM, r request) error { return stream.Pass(vm, r.headers, r.body) }

// listMemory is the guest memory of a VM with the setup's list installed,
// after 10 000 client GETs.
func listMemory(ctx context.Context, wasm []byte, setup *filterSetup) (uint32, error) {
	vm, rt, err := setup.start(ctx, wasm, "client")
	if err != nil {
		return 0, err
	}
	defer rt.Close(ctx)
	for i := 0; i < 10_000; i++ {
		if err := oneRequest(vm, scenarios[0]); err != nil {
			return 0, err
		}
	}
	return vm.MemorySize(), nil
}

// numbered is the scenario's request with "{n}" replaced by n (the host's
// work, the same for filter and pass-through).
func numbered(sc scenario, n int) ([][2]string, []byte) {
	return stream.Numbered(sc.headers, sc.body, n)
}

// requests is n requests of the scenario: numbered from first on if it is
// unique, otherwise the same request n times.
func requests(sc scenario, n, first int) []request {
	reqs := make([]request, n)
	for i := range reqs {
		if sc.unique {
			hs, b := numbered(sc, first+i)
			reqs[i] = request{hs, b}
		} else {
			reqs[i] = request{sc.headers, sc.body}
		}
	}
	return reqs
}

// measurePair measures the filter (set up by setup) and the pass-through on
// one scenario in alternating rounds, each on its own VM, and keeps each
// one's best round: the machine is shared, other load only ever adds to a
// round, and alternating lets both figures of a pair see the same load (the
// V8 figures are taken as best rounds too).
func measurePair(ctx context.Context, filter, pass []byte, setup *filterSetup, sc scenario) (filterNs, passNs float64, err error) {
	fvm, frt, err := setup.start(ctx, filter, sc.role)
	if err != nil {
		return 0, 0, err
	}
	defer frt.Close(ctx)
	pvm, prt, err := (*filterSetup)(nil).start(ctx, pass, sc.role)
	if err != nil {
		return 0, 0, err
	}
	defer prt.Close(ctx)
	filterNs, passNs = math.Inf(1), math.Inf(1)
	for round := 0; round < measureRounds; round++ {
		// Each round starts from a collected host heap: what earlier steps
		// left (a 100 000-domain list signed, VMs closed) otherwise slows
		// this host's own work, the pass-through's as much as the filter's.
		runtime.GC()
		p, err := benchRound(pvm, sc)
		if err != nil {
			return 0, 0, fmt.Errorf("pass-through: %w", err)
		}
		f, err := benchRound(fvm, sc)
		if err != nil {
			return 0, 0, err
		}
		filterNs, passNs = min(filterNs, f), min(passNs, p)
	}
	return filterNs, passNs, nil
}

// benchRound is ns per request over one testing.Benchmark run.
func benchRound(vm *proxyhost.VM, sc scenario) (float64, error) {
	if err := oneRequest(vm, sc); err != nil {
		return 0, err
	}
	var runErr error
	r := testing.Benchmark(func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := oneRequest(vm, sc); err != nil {
				runErr = err
				b.FailNow()
			}
		}
	})
	if runErr != nil {
		return 0, runErr
	}
	return float64(r.T.Nanoseconds()) / float64(r.N), nil
}

const measureRounds = 3

// benchData is the policy data of the benchmark: the own domain, the
// approved client id, the .well-known exemption and the endpoint tables
// operators start from (a path outside them is 404).
func benchData() (map[string]any, error) {
	data := map[string]any{"config": map[string]any{
		"own_domains": map[string]any{"home.example.de": true},
		"client_ids":  map[string]any{"enforce": true, "approved": map[string]any{"tim-client-1.0": true}},
		"exemptions": []any{
			map[string]any{"direction": "federation", "method": "GET", "path": "/.well-known/matrix/server"},
		},
	}}
	var defaults struct {
		Config struct {
			Endpoints any `json:"endpoints"`
		} `json:"config"`
	}
	if raw, err := fs.ReadFile(policies.FS, "data.json"); err != nil || json.Unmarshal(raw, &defaults) != nil {
		return nil, fmt.Errorf("policies/data.json: %v", err)
	}
	data["config"].(map[string]any)["endpoints"] = defaults.Config.Endpoints
	return data, nil
}
