package filter

import (
	"encoding/binary"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/timfd/fachdienst/wasm/planvm"
)

// A shadow candidate (the "shadow" member of the policy document) is a second revision evaluated on
// the same input after the decision in force, which alone is applied. A request whose candidate
// decision differs in outcome (allow, status, ask) is counted and logged with hashed identifiers.
// The candidate sees the same facts: a change of its endpoint table (config.endpoints) is not
// compared, as the router of the revision in force classified the request.

// shadowState is the candidate of this VM.
type shadowState struct {
	pol  *Policy
	eval *planvm.Evaluator
	data planvm.Value
	// evaluated and differ count since the last tick; the tick adds them to the counts shared by
	// every VM (keyShadowCounts), which the policy fetch reports to the control plane.
	evaluated, differ uint64
}

// keyShadowCounts holds 16 bytes (evaluated, differ) per candidate revision.
const keyShadowCounts = "tim.shadow.counts."

// shadowRevision is the candidate's revision, "" without one.
func (pol *Policy) shadowRevision() string {
	if pol == nil || pol.Shadow == nil {
		return ""
	}
	return pol.Shadow.Revision
}

// sharedKey identifies a policy document with its candidate in shared data.
func (pol *Policy) sharedKey() string {
	if s := pol.shadowRevision(); s != "" {
		return pol.Revision + "+" + s
	}
	return pol.Revision
}

// installShadow sets or clears the candidate of pol.
func (p *plugin) installShadow(pol *Policy) {
	p.flushShadow()
	p.shadow = nil
	if pol.Shadow == nil {
		return
	}
	p.shadow = &shadowState{pol: pol.Shadow, eval: pol.Shadow.Program.NewEvaluator()}
	if !p.shadowMetrics {
		p.shadowEvaluated = proxywasm.DefineCounterMetric("tim_filter_shadow_evaluated")
		p.shadowDiffer = proxywasm.DefineCounterMetric("tim_filter_shadow_differ")
		p.shadowMetrics = true
	}
	proxywasm.LogInfof("tim-filter: shadow candidate %q evaluated beside revision %q", pol.Shadow.Revision, pol.Revision)
}

// compareShadow evaluates the candidate on this request's input and logs a differing outcome.
func (s *stream) compareShadow(d *decision, expired bool) {
	p := s.p
	sh := p.shadow
	if sh == nil {
		return
	}
	sh.evaluated++
	res, ok, err := sh.eval.Eval(Entrypoint, s.input(expired), sh.data)
	cand, parsed := parseDecision(res)
	if err != nil || !ok || !parsed {
		// A candidate that cannot decide differs from any decision.
		cand = decision{status: 500, check: checkDefault, reason: "candidate undecided"}
	}
	if cand.allow == d.allow && cand.ask == d.ask && (d.allow || cand.status == d.status) {
		return
	}
	sh.differ++
	var sb strings.Builder
	sb.WriteString("tim-filter: shadow differs id=")
	sb.WriteString(decisionID())
	sb.WriteString(" revision=")
	sb.WriteString(p.policy.Revision)
	sb.WriteString(" candidate=")
	sb.WriteString(sh.pol.Revision)
	sb.WriteString(" in_force=")
	sb.WriteString(outcomeText(d))
	sb.WriteString(" candidate_outcome=")
	sb.WriteString(outcomeText(&cand))
	sb.WriteString(" candidate_check=")
	sb.WriteString(checkNames[cand.check])
	sb.WriteString(" direction=")
	sb.WriteString(p.cfg.Direction)
	sb.WriteString(" route=")
	sb.WriteString(s.f.route.Name)
	// The request as method and path, hashed: paths carry user and room IDs.
	sb.WriteString(" request=")
	sb.WriteString(hashID(s.f.method + " " + s.f.path))
	if s.f.clientID != "" {
		sb.WriteString(" client=")
		sb.WriteString(hashID(s.f.clientID))
	}
	for i, inv := range s.f.invitees {
		if i == 4 {
			break
		}
		sb.WriteString(" invitee=")
		sb.WriteString(hashID(inv))
	}
	proxywasm.LogWarn(sb.String())
}

func outcomeText(d *decision) string {
	switch {
	case d.allow:
		return "allow"
	case d.ask != "":
		return "ask:" + d.ask
	default:
		return "deny:" + itoa(d.status)
	}
}

// flushShadow adds this VM's counts to the shared ones (and the metrics).
func (p *plugin) flushShadow() {
	sh := p.shadow
	if sh == nil || sh.evaluated == 0 {
		return
	}
	p.shadowEvaluated.Increment(sh.evaluated)
	if sh.differ > 0 {
		p.shadowDiffer.Increment(sh.differ)
	}
	key := keyShadowCounts + sh.pol.Revision
	for range 4 { // compare-and-swap against the other VMs' flushes
		b, cas, err := proxywasm.GetSharedData(key)
		var v [16]byte
		if err == nil && len(b) == 16 {
			copy(v[:], b)
		} else {
			cas = 0
		}
		binary.BigEndian.PutUint64(v[:8], binary.BigEndian.Uint64(v[:8])+sh.evaluated)
		binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])+sh.differ)
		if proxywasm.SetSharedData(key, v[:], cas) == nil {
			sh.evaluated, sh.differ = 0, 0
			return
		}
	}
}

// shadowQuery is the candidate part of the policy fetch's query: the candidate held and the counts
// of every VM for it.
func (p *plugin) shadowQuery() string {
	sh := p.shadow
	if sh == nil {
		return ""
	}
	q := "&shadow=" + queryEscape(sh.pol.Revision)
	if b, _, err := proxywasm.GetSharedData(keyShadowCounts + sh.pol.Revision); err == nil && len(b) == 16 {
		q += "&shadow_evaluated=" + itoa(int(binary.BigEndian.Uint64(b[:8]))) + "&shadow_differ=" + itoa(int(binary.BigEndian.Uint64(b[8:])))
	}
	return q
}
