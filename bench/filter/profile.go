package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Profile of the guest (-profile DIR): where a request's work goes inside
// the module. Neither wazero nor Go's wasip1 runtime samples the guest, so
// the module is built with its name section (not stripped) and run on
// Node's V8 with its sampling profiler (--cpu-prof), on the scenarios
// named by -profile-scenarios. The profile (.cpuprofile, readable in
// Chrome's DevTools) is written to DIR and summarised by self and total
// time per guest function.

// profileScenarios are the scenarios -profile runs (comma-separated names).
var profileScenarios string

func profileGuest(dir string, list, policy []byte, config map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	wasm := filepath.Join(dir, "tim-filter-symbols.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", wasm, "./wasm/cmd/tim-filter")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the module with symbols: %v\n%s", err, b)
	}
	want := map[string]bool{}
	for _, n := range strings.Split(profileScenarios, ",") {
		want[strings.TrimSpace(n)] = true
	}
	for _, sc := range scenarios {
		if !want[sc.name] {
			continue
		}
		prof := filepath.Join(dir, sc.name)
		_ = os.RemoveAll(prof)
		v8Flags = []string{"--cpu-prof", "--cpu-prof-dir=" + prof, "--cpu-prof-interval=50"}
		_, err := runV8(wasm, list, policy, config[sc.role], []scenario{sc}, nil)
		v8Flags = nil
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		files, _ := filepath.Glob(filepath.Join(prof, "*.cpuprofile"))
		if len(files) != 1 {
			return fmt.Errorf("%s: no profile written in %s", sc.name, prof)
		}
		if err := summarise(files[0], sc.name); err != nil {
			return err
		}
	}
	return nil
}

// cpuProfile is the part of V8's .cpuprofile that is read here.
type cpuProfile struct {
	Nodes []struct {
		ID        int `json:"id"`
		CallFrame struct {
			FunctionName string `json:"functionName"`
			URL          string `json:"url"`
		} `json:"callFrame"`
		HitCount int   `json:"hitCount"`
		Children []int `json:"children"`
	} `json:"nodes"`
	Samples []int `json:"samples"`
}

// summarise prints the 40 guest functions with the most self time and,
// for the filter's own packages, their total (inclusive) time.
func summarise(path, name string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var p cpuProfile
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	parent := map[int]int{}
	fn := map[int]string{}
	for _, n := range p.Nodes {
		f := n.CallFrame.FunctionName
		if f == "" {
			f = "(" + filepath.Base(n.CallFrame.URL) + ")"
		}
		fn[n.ID] = f
		for _, c := range n.Children {
			parent[c] = n.ID
		}
	}
	self, total := map[string]int{}, map[string]int{}
	for _, id := range p.Samples {
		self[fn[id]]++
		seen := map[string]bool{}
		for n, ok := id, true; ok; n, ok = parent[n] {
			if f := fn[n]; !seen[f] {
				seen[f] = true
				total[f]++
			}
		}
	}
	all := len(p.Samples)
	names := make([]string, 0, len(self))
	for f := range self {
		names = append(names, f)
	}
	sort.Slice(names, func(i, j int) bool { return self[names[i]] > self[names[j]] })
	fmt.Printf("== guest profile of %s on V8 (%d samples; %s)\n   self%%  total%%  function\n", name, all, path)
	for i, f := range names {
		if i == 40 {
			break
		}
		fmt.Printf("  %5.1f  %6.1f  %s\n", pct(self[f], all), pct(total[f], all), f)
	}
	var own []string
	for f := range total {
		if strings.Contains(f, "fachdienst") { // V8 names Go functions with _ for / and .
			own = append(own, f)
		}
	}
	sort.Slice(own, func(i, j int) bool { return total[own[i]] > total[own[j]] })
	fmt.Println("   total%  the filter's own functions, inclusive")
	for i, f := range own {
		if i == 30 {
			break
		}
		fmt.Printf("  %6.1f  %s\n", pct(total[f], all), f)
	}
	return nil
}

func pct(n, all int) float64 {
	if all == 0 {
		return 0
	}
	return 100 * float64(n) / float64(all)
}
