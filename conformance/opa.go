package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// FixedTime is the evaluation time given to OPA (time.now_ns). Corpus cases
// that use the clock are written so that any present-day clock agrees with it.
var FixedTime = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// Outcome is what one evaluator produced for one case.
type Outcome struct {
	Result  []byte // JSON of the entrypoint's value when Defined
	Defined bool
	Err     error
}

func (o Outcome) String() string {
	switch {
	case o.Err != nil:
		return "error: " + o.Err.Error()
	case !o.Defined:
		return "undefined"
	default:
		return string(o.Result)
	}
}

// OPAQuery is an entrypoint prepared for OPA topdown evaluation over fixed
// modules and data.
type OPAQuery struct {
	pq rego.PreparedEvalQuery
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// QueryOf turns a plan entrypoint ("tim/proxy/decision") into the Rego
// reference it names (data.tim.proxy.decision).
func QueryOf(entrypoint string) string {
	var b strings.Builder
	b.WriteString("data")
	for _, seg := range strings.Split(entrypoint, "/") {
		if identRE.MatchString(seg) && !ast.IsKeyword(seg) {
			b.WriteString("." + seg)
		} else {
			q, _ := json.Marshal(seg)
			b.WriteString("[" + string(q) + "]")
		}
	}
	return b.String()
}

// PrepareOPA parses and compiles modules for OPA's evaluator with data as the
// base document. Builtin errors are non-strict (an erroring builtin is
// undefined), as in the plan VM.
func PrepareOPA(ctx context.Context, modules map[string]string, entrypoint string, data []byte) (*OPAQuery, error) {
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	opts := []func(*rego.Rego){
		rego.Query(QueryOf(entrypoint)),
		rego.Store(inmem.NewFromReader(bytes.NewReader(data))),
		rego.StrictBuiltinErrors(false),
	}
	for _, n := range names {
		opts = append(opts, rego.Module(n, modules[n]))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &OPAQuery{pq: pq}, nil
}

// ParseInput turns JSON input into the value OPA evaluates against; nil
// stays nil (undefined input).
func ParseInput(input []byte) (ast.Value, error) {
	if input == nil {
		return nil, nil
	}
	var x any
	if err := util.UnmarshalJSON(input, &x); err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(x)
}

// Eval evaluates the prepared entrypoint with input (nil: undefined).
func (q *OPAQuery) Eval(ctx context.Context, input []byte) Outcome {
	v, err := ParseInput(input)
	if err != nil {
		return Outcome{Err: err}
	}
	return q.EvalParsed(ctx, v)
}

// EvalParsed evaluates with an already parsed input (nil: undefined).
func (q *OPAQuery) EvalParsed(ctx context.Context, input ast.Value) Outcome {
	opts := []rego.EvalOption{rego.EvalTime(FixedTime)}
	if input != nil {
		opts = append(opts, rego.EvalParsedInput(input))
	}
	rs, err := q.pq.Eval(ctx, opts...)
	if err != nil {
		return Outcome{Err: err}
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Outcome{}
	}
	if len(rs) > 1 {
		return Outcome{Err: fmt.Errorf("query produced %d results", len(rs))}
	}
	b, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Result: b, Defined: true}
}

// Prepared exposes OPA's prepared query, so that benchmarks time OPA's
// evaluation alone.
func (q *OPAQuery) Prepared() rego.PreparedEvalQuery { return q.pq }

// EqualJSON reports whether two JSON documents are the same value. Objects
// compare key by key, arrays element by element in order (OPA and the VM both
// emit sets sorted), numbers by exact numeric value (1, 1.0 and 1e0 are equal;
// big numbers are compared without rounding).
func EqualJSON(a, b []byte) (bool, error) {
	var x, y any
	if err := unmarshalNumber(a, &x); err != nil {
		return false, fmt.Errorf("%w in %q", err, a)
	}
	if err := unmarshalNumber(b, &y); err != nil {
		return false, fmt.Errorf("%w in %q", err, b)
	}
	return equalValue(x, y), nil
}

func equalValue(x, y any) bool {
	switch a := x.(type) {
	case nil:
		return y == nil
	case bool:
		b, ok := y.(bool)
		return ok && a == b
	case string:
		b, ok := y.(string)
		return ok && a == b
	case json.Number:
		b, ok := y.(json.Number)
		if !ok {
			return false
		}
		ra, ok1 := new(big.Rat).SetString(string(a))
		rb, ok2 := new(big.Rat).SetString(string(b))
		if !ok1 || !ok2 {
			return a == b
		}
		return ra.Cmp(rb) == 0
	case []any:
		b, ok := y.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := y.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !equalValue(v, w) {
				return false
			}
		}
		return true
	}
	return false
}
