package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

// Instruction counts: wall-clock microseconds on a shared machine vary by
// tens of percent between runs and machines; the number of instructions a
// request costs does not. Hardware counters are not available on every
// machine (virtual machines often lack them: perf stat reports
// "<not supported>" here), so the count is taken with valgrind's callgrind,
// host and guest together. One process per module and role runs each
// workload's warm-up and then its counted requests: N of each workload in
// a base run, and 3N of one workload in a run per workload. The difference
// to the base run over 2N is that workload's instructions per request;
// setup, compilation and warm-ups cancel out. (Callgrind's own dump points,
// --dump-before, do not fire once wazero's compiled code has run.)

// countJob is what a counting child runs: one VM, then for each workload
// its warm-up requests and n counted requests.
type countJob struct {
	Wasm      string     `json:"wasm"`
	Config    []byte     `json:"config,omitempty"` // nil: the pass-through module
	Role      string     `json:"role"`
	List      []byte     `json:"list,omitempty"`
	Policy    []byte     `json:"policy,omitempty"`
	Workloads []workload `json:"workloads"`
	N         int        `json:"n"`
	// Triple is the workload run 3N times ("" in the base run).
	Triple string `json:"triple,omitempty"`
}

type workload struct {
	Name     string    `json:"name"`
	Requests []jsonReq `json:"requests"`
	Warm     int       `json:"warm"`
}

type jsonReq struct {
	Headers [][2]string `json:"headers"`
	Body    []byte      `json:"body,omitempty"`
}

// countChild runs a job (bench/filter -count-child job.json): the process
// valgrind counts.
func countChild(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var job countJob
	if err := json.Unmarshal(raw, &job); err != nil {
		return err
	}
	ctx := context.Background()
	wasm, err := os.ReadFile(job.Wasm)
	if err != nil {
		return err
	}
	var vm *proxyhost.VM
	if job.Config == nil {
		vm, _, err = (*filterSetup)(nil).start(ctx, wasm, job.Role)
	} else {
		vm, _, err = (&filterSetup{jws: job.List, policy: job.Policy, config: job.Config}).start(ctx, wasm, job.Role)
	}
	if err != nil {
		return err
	}
	for _, w := range job.Workloads {
		i := 0
		one := func() error {
			r := w.Requests[i%len(w.Requests)]
			i++
			return oneReq(vm, request{r.Headers, r.Body})
		}
		for k := 0; k < w.Warm; k++ {
			if err := one(); err != nil {
				return fmt.Errorf("%s: %w", w.Name, err)
			}
		}
		n := job.N
		if w.Name == job.Triple {
			n *= 3
		}
		for k := 0; k < n; k++ {
			if err := one(); err != nil {
				return fmt.Errorf("%s: %w", w.Name, err)
			}
		}
	}
	return nil
}

var collected = regexp.MustCompile(`Collected : (\d+)`)

// counter runs counting children under valgrind.
type counter struct {
	valgrind string
	self     string
	dir      string
}

func newCounter(dir string) (*counter, error) {
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		return nil, errors.New("valgrind not installed (apt-get install valgrind)")
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &counter{valgrind: vg, self: self, dir: dir}, nil
}

// instructions runs the job and returns each workload's instructions per
// request.
func (c *counter) instructions(job countJob) (map[string]float64, error) {
	// The first run of a module compiles it into wazero's cache; later
	// runs load it. A throwaway run first, so that every counted run loads.
	if _, err := c.run(job); err != nil {
		return nil, err
	}
	base, err := c.run(job)
	if err != nil {
		return nil, err
	}
	res := map[string]float64{}
	for _, w := range job.Workloads {
		job.Triple = w.Name
		n, err := c.run(job)
		if err != nil {
			return nil, err
		}
		res[w.Name] = (n - base) / float64(2*job.N)
	}
	return res, nil
}

// run is the instruction count of one counting child.
func (c *counter) run(job countJob) (float64, error) {
	b, _ := json.Marshal(job)
	p := filepath.Join(c.dir, "count-job.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return 0, err
	}
	cmd := exec.Command(c.valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", c.self, "-count-child", p)
	// Callgrind cannot follow the signals of Go's asynchronous preemption
	// (it aborts on them); one P keeps the host's work on one thread; the
	// host's collector would run a different number of times in the runs
	// (the guest's, inside the module, is the filter's own cost).
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1", "GOGC=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("valgrind: %v: %s", err, tail(stderr.String()))
	}
	m := collected.FindStringSubmatch(stderr.String())
	if m == nil {
		return 0, fmt.Errorf("valgrind: no count in %q", tail(stderr.String()))
	}
	return strconv.ParseFloat(m[1], 64)
}

func tail(s string) string {
	if len(s) > 600 {
		s = s[len(s)-600:]
	}
	return strings.TrimSpace(s)
}

func jsonReqs(rs []request) []jsonReq {
	out := make([]jsonReq, len(rs))
	for i, r := range rs {
		out[i] = jsonReq{r.headers, r.body}
	}
	return out
}

// countAll adds the instruction counts of every scenario and mix, with the
// list of 1 000 domains (lookups are by key: a request costs the same with
// 100 000, and that list would make every counted run verify it under
// valgrind).
func countAll(rep *report, fpath, ppath string, pki *fedlisttest.PKI, list, policy []byte, dir string) error {
	c, err := newCounter(dir)
	if err != nil {
		fmt.Println("instruction counts skipped:", err)
		return nil
	}
	rep.CountN = countN
	for _, role := range []string{"client", "federation"} {
		job := countJob{Role: role, List: list, Policy: policy, N: countN}
		for _, sc := range scenarios {
			if sc.role != role {
				continue
			}
			n := 1
			if sc.unique {
				n = 4 * countN // never repeats within warm-up and 3N
			}
			reqs := requests(sc, n, 1_000_000)
			job.Workloads = append(job.Workloads, workload{Name: sc.name, Requests: jsonReqs(reqs), Warm: min(countN, 200)})
		}
		for _, m := range mixes {
			if m.role == role {
				// A mix's warm-up is the first half of its sequence.
				reqs, _ := m.sequence(4 * countN)
				job.Workloads = append(job.Workloads, workload{Name: "mix:" + m.name, Requests: jsonReqs(reqs), Warm: countN})
			}
		}
		job.Wasm, job.Config = fpath, filterConfig(pki, role)
		f, err := c.instructions(job)
		if err != nil {
			return fmt.Errorf("count %s filter: %w", role, err)
		}
		job.Wasm, job.Config = ppath, nil
		p, err := c.instructions(job)
		if err != nil {
			return fmt.Errorf("count %s pass-through: %w", role, err)
		}
		for _, w := range job.Workloads {
			fi, pi := f[w.Name], p[w.Name]
			if name, ok := strings.CutPrefix(w.Name, "mix:"); ok {
				for i := range rep.Mixes[name].Results {
					r := &rep.Mixes[name].Results[i]
					r.FilterInstructions, r.PassthroughInstructions, r.Instructions = fi, pi, fi-pi
				}
			} else {
				for i := range rep.Results {
					if r := &rep.Results[i]; r.Scenario == w.Name {
						r.FilterInstructions, r.PassthroughInstructions, r.Instructions = fi, pi, fi-pi
					}
				}
			}
			fmt.Printf("%-28s instructions per request: filter %8.0f, pass-through %6.0f, above pass-through %8.0f\n", w.Name, fi, pi, fi-pi)
		}
	}
	return nil
}

// cpuModel is the first "model name" of /proc/cpuinfo and the number of
// CPUs.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model, n := "unknown", 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if n == 0 {
				model = strings.TrimSpace(v)
			}
			n++
		}
	}
	return fmt.Sprintf("%s, %d CPUs", model, n)
}
