package conformance

import (
	"fmt"

	"github.com/timfd/fachdienst/wasm/planvm"
)

// VMProgram is a plan loaded into the plan VM.
type VMProgram struct {
	p *planvm.Program
}

// LoadVM loads a plan into the VM.
func LoadVM(plan []byte) (prog *VMProgram, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("VM panicked while loading: %v", r)
		}
	}()
	p, err := planvm.Load(plan)
	if err != nil {
		return nil, err
	}
	return &VMProgram{p: p}, nil
}

// EvalJSON evaluates entry with JSON input (nil: undefined) and data, at
// FixedTime, as OPA is evaluated. A panic is reported as an error, never
// propagated: the VM promises not to panic.
func (v *VMProgram) EvalJSON(entry string, input, data []byte) (o Outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = Outcome{Err: fmt.Errorf("VM panicked: %v", r)}
		}
	}()
	in := planvm.Undefined()
	if input != nil {
		var err error
		if in, err = planvm.ParseJSON(input); err != nil {
			return Outcome{Err: fmt.Errorf("input: %w", err)}
		}
	}
	d, err := planvm.ParseJSON(data)
	if err != nil {
		return Outcome{Err: fmt.Errorf("data: %w", err)}
	}
	return v.Eval(entry, in, d)
}

// Eval evaluates with values already parsed by planvm.ParseJSON.
func (v *VMProgram) Eval(entry string, input, data planvm.Value) Outcome {
	res, ok, err := v.p.Eval(entry, input, data, planvm.WithNow(FixedTime))
	if err != nil {
		return Outcome{Err: err}
	}
	if !ok {
		return Outcome{}
	}
	b, err := planvm.ToJSON(res)
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Result: b, Defined: true}
}
