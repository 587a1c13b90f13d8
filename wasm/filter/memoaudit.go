package filter

import (
	"bytes"

	"github.com/timfd/fachdienst/wasm/planvm"
)

// The memo's audit (memoAudit, on in tests): a decision is remembered
// under a key built from the request's facts or header values, not from
// the input document itself, so a member of the input that the key left
// out would serve another input's decision. The audit rebuilds the input
// of every hit and compares it with the one the decision was evaluated on.

// auditHit checks a hit under the facts key of the stream's facts.
func (s *stream) auditHit(h uint64, expired bool) {
	slot := s.p.memo.slotOf(h)
	if slot.input == nil {
		return
	}
	if got := inputJSON(s.input(expired)); !bytes.Equal(got, slot.input) {
		panic("memo: key equal, input differs:\n" + string(got) + "\n" + string(slot.input))
	}
}

// auditRawHit checks a hit under the header key: the facts of the header
// values give the remembered input.
func (s *stream) auditRawHit(hv *headerValues, h uint64, expired bool) {
	if err := s.f.fromValues(hv, s.p.router); err != nil {
		panic("memo: a header key hit for a request without facts: " + err.Error())
	}
	s.auditHit(h, expired)
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
