// Command policy benchmarks the proxy decision (tim/proxy/decision) in the
// plan VM beside OPA's own evaluator on the same plan source, inputs and
// data, with 1 000 and 100 000 federation domains, and measures what loading
// the plan and a 100 000-domain data document costs the VM.
//
//	go run ./bench/policy -out build/bench/policy.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/timfd/fachdienst/bench/internal/proc"
	"github.com/timfd/fachdienst/conformance"
	"github.com/timfd/fachdienst/control/plancompile"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Targets the figures are reported against.
const (
	targetVMNs        = 1000 // ns per decision
	targetOPAOverVM   = 10.0
	targetScaleRatio  = 1.2 // 100k / 1k
	targetLoadMs      = 200.0
	loadDomains       = 100_000
	loadRuns          = 3
	ownDomain         = "home.example.de"
	approvedClient    = "tim-client-1.0"
	federatedTemplate = "d%06d.example.de"
)

// scenarios are the three decisions measured; %s is a federated domain.
var scenarios = []struct{ name, input string }{
	{"client_get", `{"direction":"client","method":"GET","path":"/_matrix/client/v3/sync","host":"home.example.de","route":"client_other","endpoint":"/_matrix/client/r0|v3|unstable/sync","client_id":"tim-client-1.0","federation_list_expired":false}`},
	{"federation_origin", `{"direction":"federation","method":"PUT","path":"/_matrix/federation/v1/send/1","host":"home.example.de","route":"federation_other","endpoint":"/_matrix/federation/v1/send/{txnID}","xmatrix":{"origin":"%s","destination":"home.example.de","origin_domain":"%s","destination_domain":"home.example.de"},"federation_list_expired":false}`},
	{"create_room_1_invitee", `{"direction":"client","method":"POST","path":"/_matrix/client/v3/createRoom","host":"home.example.de","route":"createRoom","endpoint":"/_matrix/client/r0|v3|unstable/createRoom","client_id":"tim-client-1.0","invitees":[{"mxid":"@doc:%s","domain":"%s"}],"federation_list_expired":false}`},
}

var sizes = []int{1_000, 100_000}

// Figure is one benchmark result. CPUNsPerOp is the process's user+system
// CPU time per operation over a second run of the same length: on a busy
// shared machine wall time per operation mostly measures the wait for a
// core, CPU time the work.
type Figure struct {
	NsPerOp     float64 `json:"ns_per_op"`
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
}

// Load is the cost of loading plan and data into the VM.
type Load struct {
	Domains   int     `json:"domains"`
	PlanBytes int     `json:"plan_bytes"`
	DataBytes int     `json:"data_bytes"`
	Ms        float64 `json:"ms"`
	HeapBytes int64   `json:"heap_bytes"`
}

// Report is the JSON document written to -out.
type Report struct {
	VM      map[string]Figure  `json:"vm"`
	OPA     map[string]Figure  `json:"opa"`
	Load    Load               `json:"load"`
	Ratios  map[string]float64 `json:"ratios"`
	Targets map[string]bool    `json:"targets_met"`
}

func main() {
	out := flag.String("out", "", "write the figures as JSON to this file")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/policy:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	ctx := context.Background()
	res, err := plancompile.Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		return err
	}
	modules, err := conformance.PolicyModules(policies.FS)
	if err != nil {
		return err
	}
	prog, err := planvm.Load(res.Plan)
	if err != nil {
		return err
	}
	rep := Report{VM: map[string]Figure{}, OPA: map[string]Figure{}, Ratios: map[string]float64{}, Targets: map[string]bool{}}
	// Load first, on a heap that holds nothing else yet.
	if rep.Load, err = measureLoad(res.Plan); err != nil {
		return err
	}

	for _, n := range sizes {
		dataJSON, err := dataDoc(n)
		if err != nil {
			return err
		}
		vmData, err := planvm.ParseJSON(dataJSON)
		if err != nil {
			return err
		}
		q, err := conformance.PrepareOPA(ctx, modules, policies.ProxyDecision, dataJSON)
		if err != nil {
			return err
		}
		pq := q.Prepared()
		peer := fmt.Sprintf(federatedTemplate, n/2) // in the list, not at either end
		for _, sc := range scenarios {
			key := fmt.Sprintf("%s_%s", sc.name, sizeName(n))
			inJSON := []byte(strings.ReplaceAll(sc.input, "%s", peer))
			vmIn, err := planvm.ParseJSON(inJSON)
			if err != nil {
				return err
			}
			opaIn, err := conformance.ParseInput(inJSON)
			if err != nil {
				return err
			}
			if err := sameDecision(ctx, prog, q, vmIn, vmData, opaIn); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			// The filter evaluates through one Evaluator per plugin: no allocation per decision.
			ev := prog.NewEvaluator()
			rep.VM[key] = measure(func() {
				if _, ok, err := ev.Eval(policies.ProxyDecision, vmIn, vmData); err != nil || !ok {
					panic(fmt.Sprintf("vm: %v %v", ok, err))
				}
			})
			rep.OPA[key] = measure(func() {
				if rs, err := pq.Eval(ctx, rego.EvalParsedInput(opaIn)); err != nil || len(rs) != 1 {
					panic(fmt.Sprintf("opa: %v %v", rs, err))
				}
			})
		}
	}

	// The ratios are the worst case over the scenarios: the largest
	// 100k/1k growth and the smallest OPA/VM speed-up, on CPU time.
	worstScale, worstSpeedup, slowestVM := 0.0, 0.0, 0.0
	for _, sc := range scenarios {
		s := rep.VM[sc.name+"_100k"].CPUNsPerOp / rep.VM[sc.name+"_1k"].CPUNsPerOp
		rep.Ratios["vm_100k_over_1k_"+sc.name] = round2(s)
		worstScale = max(worstScale, s)
		for _, n := range sizes {
			key := sc.name + "_" + sizeName(n)
			sp := rep.OPA[key].CPUNsPerOp / rep.VM[key].CPUNsPerOp
			rep.Ratios["opa_over_vm_"+key] = round2(sp)
			if worstSpeedup == 0 || sp < worstSpeedup {
				worstSpeedup = sp
			}
			slowestVM = max(slowestVM, rep.VM[key].CPUNsPerOp)
		}
	}
	rep.Ratios["vm_100k_over_1k"] = round2(worstScale)
	rep.Ratios["opa_over_vm"] = round2(worstSpeedup)
	rep.Targets["vm_le_1us"] = slowestVM <= targetVMNs
	rep.Targets["opa_over_vm_ge_10"] = worstSpeedup >= targetOPAOverVM
	rep.Targets["vm_100k_over_1k_le_1.2"] = worstScale <= targetScaleRatio
	rep.Targets["load_le_200ms"] = rep.Load.Ms <= targetLoadMs

	printReport(rep, slowestVM)
	if out == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// dataDoc is the default policy data with n federation domains, the own
// domain and the approved client id.
func dataDoc(n int) ([]byte, error) {
	defaults, err := fs.ReadFile(policies.FS, "data.json")
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := util.UnmarshalJSON(defaults, &doc); err != nil {
		return nil, err
	}
	domains := make(map[string]any, n)
	for i := range n {
		domains[fmt.Sprintf(federatedTemplate, i)] = map[string]any{"isInsurance": i%10 == 0}
	}
	doc["federation"] = map[string]any{"domains": domains}
	cfg, _ := doc["config"].(map[string]any)
	if cfg == nil {
		return nil, fmt.Errorf("policies/data.json has no config object")
	}
	cfg["own_domains"] = map[string]any{ownDomain: true}
	ids, _ := cfg["client_ids"].(map[string]any)
	if ids == nil {
		ids = map[string]any{"enforce": true}
		cfg["client_ids"] = ids
	}
	ids["approved"] = map[string]any{approvedClient: true}
	return json.Marshal(doc)
}

// sameDecision makes sure both evaluators decide alike before they are timed.
func sameDecision(ctx context.Context, prog *planvm.Program, q *conformance.OPAQuery, vmIn, vmData planvm.Value, opaIn ast.Value) error {
	var vm conformance.Outcome
	v, ok, err := prog.Eval(policies.ProxyDecision, vmIn, vmData)
	switch {
	case err != nil:
		vm.Err = err
	case ok:
		vm.Defined = true
		vm.Result, vm.Err = planvm.ToJSON(v)
	}
	opa := q.EvalParsed(ctx, opaIn)
	if !opa.Defined {
		return fmt.Errorf("OPA gives no decision: %s", opa)
	}
	if d := conformance.Diff(opa, vm); d != "" {
		return fmt.Errorf("decisions differ: %s", d)
	}
	return nil
}

// measureLoad times planvm.Load plus parsing a data document with
// loadDomains domains (the fastest of loadRuns, so that a busy machine
// disturbs the figure less), and the heap both keep alive afterwards.
func measureLoad(plan []byte) (Load, error) {
	data, err := dataDoc(loadDomains)
	if err != nil {
		return Load{}, err
	}
	l := Load{Domains: loadDomains, PlanBytes: len(plan), DataBytes: len(data)}
	for i := range loadRuns {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		prog, err := planvm.Load(plan)
		if err != nil {
			return Load{}, err
		}
		v, err := planvm.ParseJSON(data)
		if err != nil {
			return Load{}, err
		}
		ms := round2(float64(time.Since(start).Microseconds()) / 1000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(prog)
		runtime.KeepAlive(v)
		if i == 0 || ms < l.Ms {
			l.Ms = ms
		}
		l.HeapBytes = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	return l, nil
}

// measure runs op under testing.Benchmark, then as many times again while
// reading the process CPU clock.
func measure(op func()) Figure {
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op()
		}
	})
	f := Figure{AllocsPerOp: r.AllocsPerOp(), BytesPerOp: r.AllocedBytesPerOp()}
	if r.N == 0 {
		return f
	}
	f.NsPerOp = round2(float64(r.T.Nanoseconds()) / float64(r.N))
	start := proc.CPUTime().Nanoseconds()
	for range r.N {
		op()
	}
	f.CPUNsPerOp = round2(float64(proc.CPUTime().Nanoseconds()-start) / float64(r.N))
	return f
}

func sizeName(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func printReport(rep Report, slowestVM float64) {
	fmt.Printf("%-28s %10s %10s %7s %10s %10s %7s %8s\n", "decision", "vm ns/op", "vm cpu", "allocs", "opa ns/op", "opa cpu", "allocs", "opa/vm")
	for _, sc := range scenarios {
		for _, n := range sizes {
			key := sc.name + "_" + sizeName(n)
			v, o := rep.VM[key], rep.OPA[key]
			fmt.Printf("%-28s %10.1f %10.1f %7d %10.1f %10.1f %7d %7.1fx\n", key, v.NsPerOp, v.CPUNsPerOp, v.AllocsPerOp,
				o.NsPerOp, o.CPUNsPerOp, o.AllocsPerOp, rep.Ratios["opa_over_vm_"+key])
		}
	}
	fmt.Println("(ns/op is wall time; cpu is process CPU time per op, the figure the targets use)")
	fmt.Printf("load plan (%d B) + data (%d domains, %d B): %.1f ms, heap %.1f MiB\n",
		rep.Load.PlanBytes, rep.Load.Domains, rep.Load.DataBytes, rep.Load.Ms, float64(rep.Load.HeapBytes)/(1<<20))
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Printf("target vm <= 1 us per decision:     slowest %.1f ns cpu  %s\n", slowestVM, mark(rep.Targets["vm_le_1us"]))
	fmt.Printf("target opa/vm >= 10:                worst %.1fx  %s\n", rep.Ratios["opa_over_vm"], mark(rep.Targets["opa_over_vm_ge_10"]))
	fmt.Printf("target vm 100k/1k <= 1.2:           worst %.2f  %s\n", rep.Ratios["vm_100k_over_1k"], mark(rep.Targets["vm_100k_over_1k_le_1.2"]))
	fmt.Printf("target load <= 200 ms:              %.1f ms  %s\n", rep.Load.Ms, mark(rep.Targets["load_le_200ms"]))
}
