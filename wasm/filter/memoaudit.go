package filter

import (
	"bytes"

	"github.com/timfd/fachdienst/wasm/planvm"
)

// The memo's audit (memoAudit, on in tests): a decision is remembered
// under a key built from the request's facts or header values, and a facts
// key leaves the opaque strings out (memo.keyOf), so a member of the input
// that the key left out, or an observation the plan VM failed to record,
// would serve another input's decision. The audit evaluates the policy
// again on the input of every hit and compares the decisions; a header key
// holds the whole input, and its hits must also rebuild the same input.

// auditHit checks a hit d under the facts key of the stream's facts.
func (s *stream) auditHit(h uint64, expired bool, d *decision) {
	p := s.p
	in := s.input(expired)
	if slot := p.memo.hit; slot.input != nil {
		if got := inputJSON(in); !bytes.Equal(got, slot.input) {
			panic("memo: header key equal, input differs:\n" + string(got) + "\n" + string(slot.input))
		}
	}
	res, ok, err := p.eval.Eval(Entrypoint, in, p.data)
	if err != nil || !ok {
		panic("memo: a remembered decision whose input does not evaluate")
	}
	fresh, ok := parseDecision(res)
	if !ok || !sameDecision(&fresh, d) {
		j, _ := planvm.ToJSON(res)
		panic("memo: key equal, decision differs for input\n" + string(inputJSON(in)) + "\nremembered " + string(d.body) + " " + d.reason + "\nfresh " + string(j))
	}
}

// auditRawHit checks a hit under the header key: the facts of the header
// values give the remembered input.
func (s *stream) auditRawHit(hv *headerValues, h uint64, expired bool, d *decision) {
	if err := s.f.fromValues(hv, s.p.router, nil); err != nil {
		panic("memo: a header key hit for a request without facts: " + err.Error())
	}
	s.auditHit(h, expired, d)
}

// inputJSON is the input document's JSON (copied out of the request's
// buffers).
func inputJSON(in planvm.Value) []byte {
	b, err := planvm.ToJSON(in)
	if err != nil {
		panic("memo: input not JSON: " + err.Error())
	}
	return b
}

func sameDecision(a, b *decision) bool {
	return a.allow == b.allow && a.status == b.status && bytes.Equal(a.body, b.body) && a.ask == b.ask &&
		a.reason == b.reason && a.check == b.check && a.refetch == b.refetch && a.log == b.log
}
