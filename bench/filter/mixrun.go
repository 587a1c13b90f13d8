package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/timfd/fachdienst/proxyhost"
)

// mixResult is one mix at one list size.
type mixResult struct {
	Mix     string `json:"mix"`
	Domains int    `json:"domains"`
	// Wall clock in wazero: mean and 99th percentile per request, filter and
	// pass-through, each the best of the rounds; overheads are filter minus
	// pass-through (the p99 overhead is the difference of the two p99s).
	FilterMeanNs      float64 `json:"filter_mean_ns"`
	FilterP99Ns       float64 `json:"filter_p99_ns"`
	PassthroughMeanNs float64 `json:"passthrough_mean_ns"`
	PassthroughP99Ns  float64 `json:"passthrough_p99_ns"`
	OverheadMeanNs    float64 `json:"overhead_mean_ns"`
	OverheadP99Ns     float64 `json:"overhead_p99_ns"`
	// MemoHitRate is memo hits over requests decided (tim_filter_memo_hits
	// / (hits + misses)) in the measured rounds.
	MemoHitRate float64 `json:"memo_hit_rate"`
	// V8 (Node): the same sequence.
	V8FilterMeanNs      float64 `json:"v8_filter_mean_ns,omitempty"`
	V8FilterP99Ns       float64 `json:"v8_filter_p99_ns,omitempty"`
	V8PassthroughMeanNs float64 `json:"v8_passthrough_mean_ns,omitempty"`
	V8PassthroughP99Ns  float64 `json:"v8_passthrough_p99_ns,omitempty"`
	V8OverheadMeanNs    float64 `json:"v8_overhead_mean_ns,omitempty"`
	V8OverheadP99Ns     float64 `json:"v8_overhead_p99_ns,omitempty"`
	// Instructions per request above pass-through (valgrind; 0 when not
	// counted), and the filter's and pass-through's own.
	Instructions            float64 `json:"instructions_above_passthrough,omitempty"`
	FilterInstructions      float64 `json:"filter_instructions,omitempty"`
	PassthroughInstructions float64 `json:"passthrough_instructions,omitempty"`
	// Ratio of the mix's mean overhead to the memo-hit cost (the repeated
	// client GET or server-server query at the same list size).
	RatioToHit float64 `json:"ratio_to_memo_hit,omitempty"`
}

// mixReport describes a mix for the report: its shapes' proportions.
type mixReport struct {
	Role        string             `json:"role"`
	Proportions map[string]float64 `json:"proportions_percent"`
	Source      string             `json:"source"`
	Results     []mixResult        `json:"results"`
}

const mixSource = "shapes: requests through the proxies of e2e TestTwoOrganisations against two Dendrite v0.13.8 (bench/filter/testdata/e2e-shapes.tsv) plus what an everyday client adds; proportions: a model of an active user's hour, written down in bench/filter/mix.go (no published per-endpoint homeserver statistics found)"

const mixRounds = 3

// segments is the mix's sequence cut into warm-up and measured rounds: each
// round runs requests the VM has not seen (new transaction ids stay new).
func (m mix) segments() [][]request {
	reqs, _ := m.sequence((mixRounds + 1) * mixLength)
	var segs [][]request
	for i := 0; i <= mixRounds; i++ {
		segs = append(segs, reqs[i*mixLength:(i+1)*mixLength])
	}
	return segs
}

// measureMix runs the mix on the filter and the pass-through in alternating
// rounds, each VM seeing the same segments in the same order.
func measureMix(ctx context.Context, filter, pass []byte, setup *filterSetup, m mix) (mixResult, error) {
	r := mixResult{Mix: m.name}
	fvm, frt, err := setup.start(ctx, filter, m.role)
	if err != nil {
		return r, err
	}
	defer frt.Close(ctx)
	pvm, prt, err := (*filterSetup)(nil).start(ctx, pass, m.role)
	if err != nil {
		return r, err
	}
	defer prt.Close(ctx)
	segs := m.segments()
	for _, vm := range []*proxyhost.VM{fvm, pvm} {
		if _, _, err := runSegment(vm, segs[0]); err != nil {
			return r, err
		}
	}
	hits0, misses0 := memoCounts(fvm, frt)
	r.FilterMeanNs, r.FilterP99Ns = math.Inf(1), math.Inf(1)
	r.PassthroughMeanNs, r.PassthroughP99Ns = math.Inf(1), math.Inf(1)
	for _, seg := range segs[1:] {
		runtime.GC()
		pm, pp, err := runSegment(pvm, seg)
		if err != nil {
			return r, fmt.Errorf("pass-through: %w", err)
		}
		fm, fp, err := runSegment(fvm, seg)
		if err != nil {
			return r, err
		}
		r.FilterMeanNs, r.FilterP99Ns = min(r.FilterMeanNs, fm), min(r.FilterP99Ns, fp)
		r.PassthroughMeanNs, r.PassthroughP99Ns = min(r.PassthroughMeanNs, pm), min(r.PassthroughP99Ns, pp)
	}
	hits, misses := memoCounts(fvm, frt)
	if d := (hits - hits0) + (misses - misses0); d > 0 {
		r.MemoHitRate = float64(hits-hits0) / float64(d)
	}
	r.OverheadMeanNs = r.FilterMeanNs - r.PassthroughMeanNs
	r.OverheadP99Ns = r.FilterP99Ns - r.PassthroughP99Ns
	return r, nil
}

// runSegment runs the requests and returns mean and p99 in ns.
func runSegment(vm *proxyhost.VM, reqs []request) (mean, p99 float64, err error) {
	ds := make([]time.Duration, len(reqs))
	var total time.Duration
	for i, rq := range reqs {
		t0 := time.Now()
		if err := oneReq(vm, rq); err != nil {
			return 0, 0, err
		}
		ds[i] = time.Since(t0)
		total += ds[i]
	}
	vm.ClearLogs()
	slices.Sort(ds)
	return float64(total.Nanoseconds()) / float64(len(reqs)), float64(ds[len(ds)*99/100].Nanoseconds()), nil
}

// memoCounts reads the filter's memo counters (reported on ticks).
func memoCounts(vm *proxyhost.VM, rt *proxyhost.Runtime) (hits, misses int64) {
	_ = vm.Tick()
	hits, _ = rt.Counter("tim_filter_memo_hits")
	misses, _ = rt.Counter("tim_filter_memo_misses")
	return hits, misses
}
