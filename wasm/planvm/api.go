// Package planvm evaluates OPA IR plans (the JSON that OPA's planner emits for
// the compile target "plan") without depending on OPA.
//
// A plan is loaded once with Load, which parses and precompiles it: string
// constants become interned Values, function names become pointers and locals
// become slots of a frame that is reused between evaluations. Eval is then
// cheap enough to run once per HTTP request inside a proxy-wasm filter.
//
// Evaluation is bounded (step limit, call-depth limit), never panics and
// reports every failure as an error; callers treat an error as a denial.
package planvm

import (
	"time"
)

// Default bounds of one evaluation.
const (
	DefaultStepLimit = 1_000_000
	DefaultMaxDepth  = 256
)

// EvalOption adjusts one evaluation.
type EvalOption func(*evalConfig)

type evalConfig struct {
	stepLimit int
	now       time.Time
	hasNow    bool
	observe   bool
}

// Observe makes the evaluation record the uses of the input's opaque
// strings (observe.go; Evaluator.Observations).
var Observe EvalOption = func(c *evalConfig) { c.observe = true }

// WithStepLimit bounds the number of statements one evaluation may execute.
// n <= 0 selects DefaultStepLimit.
func WithStepLimit(n int) EvalOption {
	return func(c *evalConfig) {
		if n > 0 {
			c.stepLimit = n
		}
	}
}

// WithNow fixes the value time.now_ns returns. Without it the clock is read
// once, on the first call of time.now_ns within an evaluation.
func WithNow(t time.Time) EvalOption {
	return func(c *evalConfig) {
		c.now = t
		c.hasNow = true
	}
}

// Entrypoints returns the names of the plan's entrypoints, e.g.
// "tim/proxy/decision", in the order of the plan.
func (p *Program) Entrypoints() []string {
	out := make([]string, len(p.plans))
	for i, pl := range p.plans {
		out[i] = pl.name
	}
	return out
}

// EvalJSON is Eval for JSON documents. A nil input means an undefined input;
// a nil data means an empty data document. The result is canonical JSON
// (see ToJSON).
func (p *Program) EvalJSON(entry string, input, data []byte) ([]byte, bool, error) {
	var in, d Value
	var err error
	if input != nil {
		if in, err = ParseJSON(input); err != nil {
			return nil, false, err
		}
	}
	if data != nil {
		if d, err = ParseJSON(data); err != nil {
			return nil, false, err
		}
	} else {
		d = NewObject()
	}
	res, ok, err := p.Eval(entry, in, d)
	if err != nil || !ok {
		return nil, ok, err
	}
	out, err := ToJSON(res)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}
