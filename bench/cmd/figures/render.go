package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// report is the part of bench/filter's JSON report the documents show.
type report struct {
	CPU     string `json:"cpu"`
	Load    string `json:"load_average"`
	Results []struct {
		Scenario     string  `json:"scenario"`
		Domains      int     `json:"domains"`
		OverheadNs   float64 `json:"overhead_ns"`
		PassNs       float64 `json:"passthrough_ns_per_request"`
		V8OverheadNs float64 `json:"v8_overhead_ns"`
		Instructions float64 `json:"instructions_above_passthrough"`
		Target       float64 `json:"target_overhead_ns"`
	} `json:"results"`
	Mixes map[string]struct {
		Role        string             `json:"role"`
		Proportions map[string]float64 `json:"proportions_percent"`
		Results     []struct {
			Domains      int     `json:"domains"`
			MeanNs       float64 `json:"overhead_mean_ns"`
			P99Ns        float64 `json:"overhead_p99_ns"`
			V8MeanNs     float64 `json:"v8_overhead_mean_ns"`
			V8P99Ns      float64 `json:"v8_overhead_p99_ns"`
			HitRate      float64 `json:"memo_hit_rate"`
			Instructions float64 `json:"instructions_above_passthrough"`
			RatioToHit   float64 `json:"ratio_to_memo_hit"`
		} `json:"results"`
	} `json:"mix"`
	Peers        map[string]map[string]float64 `json:"peers"`
	Ratio        map[string]float64            `json:"ratio_100k_to_1k"`
	FilterBytes  int                           `json:"filter_module_bytes"`
	PassBytes    int                           `json:"passthrough_module_bytes"`
	CountN       int                           `json:"instruction_count_n"`
	OPAWasmBytes int                           `json:"opa_wasm_module_bytes"`
}

func load(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Labels of the scenarios and mixes, in the order shown.
var scenarioLabels = []struct{ name, label string }{
	{"client_get", "client-server GET `/sync`, repeated (memo hit)"},
	{"federation_query", "server-server profile query, repeated (memo hit)"},
	{"createroom_one_invitee", "createRoom, one invitee, repeated (memo hit)"},
	{"client_send_new", "client-server `PUT …/send/{txnId}`, new transaction id each time"},
	{"federation_send_new", "server-server `PUT /send/{txnId}` with a PDU, new transaction id each time"},
	{"createroom_new_invitee", "createRoom, new invitee each time"},
}

// mixLabels name the mixes and the repeated scenario whose cost is the
// memo-hit cost of the mix's listener.
var mixLabels = []struct{ name, label, hit string }{
	{"client_server", "client-server mix", "client_get"},
	{"server_server", "server-server mix", "federation_query"},
}

func us(ns float64) string {
	if ns == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", ns/1000)
}

func kinstr(n float64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f k", n/1000)
}

// render is the generated section: a table of scenarios and mixes.
func render(r *report) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Filter per request above the pass-through filter on the same host (`go run ./bench/filter`; snapshot `%s`),\n", snapshotPath)
	fmt.Fprintf(&b, "on %s, load average %s at the start; wall clock in µs at 1 000 / 100 000 federation domains, instructions\n", r.CPU, r.Load)
	fmt.Fprintf(&b, "per request (valgrind, host and guest, 1 000 domains) — the figure that compares across machines:\n\n")
	b.WriteString("| request | wazero µs | V8 µs | instructions |\n|---|---|---|---|\n")
	get := func(name string, domains int) (o, v8, ins float64, ok bool) {
		for _, x := range r.Results {
			if x.Scenario == name && x.Domains == domains {
				return x.OverheadNs, x.V8OverheadNs, x.Instructions, true
			}
		}
		return 0, 0, 0, false
	}
	for _, s := range scenarioLabels {
		o1, v1, i1, ok1 := get(s.name, 1000)
		o2, v2, _, ok2 := get(s.name, 100_000)
		if !ok1 && !ok2 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s / %s | %s / %s | %s |\n", s.label, us(o1), us(o2), us(v1), us(v2), kinstr(i1))
	}
	b.WriteString("\n| mix | wazero mean / p99 µs | V8 mean / p99 µs | instructions | memo hit rate | × memo-hit cost (wazero µs) | × memo-hit instructions |\n|---|---|---|---|---|---|---|\n")
	for _, m := range mixLabels {
		mx, ok := r.Mixes[m.name]
		if !ok {
			continue
		}
		var cells [4][]string
		var ins float64
		for _, x := range mx.Results {
			cells[0] = append(cells[0], us(x.MeanNs)+" / "+us(x.P99Ns))
			cells[1] = append(cells[1], us(x.V8MeanNs)+" / "+us(x.V8P99Ns))
			cells[2] = append(cells[2], fmt.Sprintf("%.2f", x.HitRate))
			cells[3] = append(cells[3], fmt.Sprintf("%.1f", x.RatioToHit))
			if x.Instructions > 0 {
				ins = x.Instructions
			}
		}
		insRatio := "—"
		if _, _, hit, ok := get(m.hit, 1000); ok && hit > 0 && ins > 0 {
			insRatio = fmt.Sprintf("%.1f", ins/hit)
		}
		fmt.Fprintf(&b, "| %s (1 000 ‖ 100 000 domains) | %s | %s | %s | %s | %s | %s |\n", m.label,
			strings.Join(cells[0], " ‖ "), strings.Join(cells[1], " ‖ "), kinstr(ins), strings.Join(cells[2], " ‖ "), strings.Join(cells[3], " ‖ "), insRatio)
	}
	if len(r.Peers) > 0 {
		b.WriteString("\n| peer, same requests and policy | ours ÷ theirs (per request above pass-through) |\n|---|---|\n")
		for _, p := range slices.Sorted(maps.Keys(r.Peers)) {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(r.Peers[p])) {
				parts = append(parts, fmt.Sprintf("%s %.3f", k, r.Peers[p][k]))
			}
			fmt.Fprintf(&b, "| %s | %s |\n", p, strings.Join(parts, ", "))
		}
	}
	if len(r.Ratio) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Ratio)) {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, r.Ratio[k]))
		}
		fmt.Fprintf(&b, "\nWall clock 100k/1k ratios (filter, wazero): %s.\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "\nModule %.2f MB (pass-through %.2f MB", float64(r.FilterBytes)/1e6, float64(r.PassBytes)/1e6)
	if r.OPAWasmBytes > 0 {
		fmt.Fprintf(&b, ", OPA-in-Wasm peer %.1f MB", float64(r.OPAWasmBytes)/1e6)
	}
	b.WriteString(").\n")
	return b.Bytes()
}
