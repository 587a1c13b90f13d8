package filter

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Checks, as the policy names them in decision.check, plus "request" for
// what Go refuses before the policy runs (body too large, not JSON).
var checkNames = [...]string{"exemption", "client_id", "federation", "createroom", "invite", "xmatrix", "default", "request", "endpoint"}

// One name per check: the build fails when they disagree.
const _ = uint(numChecks-len(checkNames)) + uint(len(checkNames)-numChecks)

const (
	checkExemption = iota
	checkClientID
	checkFederation
	checkCreateRoom
	checkInvite
	checkXMatrix
	checkDefault
	checkRequest
	checkEndpoint
	numChecks
)

func checkIndex(name string) int {
	for i, n := range checkNames {
		if n == name {
			return i
		}
	}
	return checkDefault
}

const (
	outcomeAllowed = iota
	outcomeDenied
	outcomeError
	outcomeDryRun
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allowed", "denied", "error", "dryrun_denied"}

// metrics are the filter's counters: tim_filter_<check>_<outcome> and the
// state of list and policy.
type metrics struct {
	checks [][]proxywasm.MetricCounter
	// pending are the check outcomes counted since the last flush: a host
	// call per request for its counter was a noticeable share of the
	// filter's own cost, so requests count here and ticks report.
	pending       [numChecks][numOutcomes]uint64
	notReady      proxywasm.MetricCounter
	listUpdates   proxywasm.MetricCounter
	listRejected  proxywasm.MetricCounter
	listErrors    proxywasm.MetricCounter
	listExpired   proxywasm.MetricCounter
	policyUpdates proxywasm.MetricCounter
	// policyRevision is the revision in force as revisionGauge numbers it.
	policyRevision proxywasm.MetricGauge
	policyRejected proxywasm.MetricCounter
	policyErrors   proxywasm.MetricCounter
	// The memo's counts (memoStats): tim_filter_memo_{hits,misses,evictions,skipped}.
	memoHits, memoMisses, memoEvictions, memoSkipped proxywasm.MetricCounter
}

func defineMetrics() *metrics {
	m := &metrics{checks: make([][]proxywasm.MetricCounter, len(checkNames))}
	for i, c := range checkNames {
		m.checks[i] = make([]proxywasm.MetricCounter, len(outcomeNames))
		for j, o := range outcomeNames {
			m.checks[i][j] = proxywasm.DefineCounterMetric("tim_filter_" + c + "_" + o)
		}
	}
	m.notReady = proxywasm.DefineCounterMetric("tim_filter_not_ready")
	m.listUpdates = proxywasm.DefineCounterMetric("tim_filter_fedlist_updates")
	m.listRejected = proxywasm.DefineCounterMetric("tim_filter_fedlist_rejected")
	m.listErrors = proxywasm.DefineCounterMetric("tim_filter_fedlist_fetch_errors")
	m.listExpired = proxywasm.DefineCounterMetric("tim_filter_fedlist_expired")
	m.policyUpdates = proxywasm.DefineCounterMetric("tim_filter_policy_updates")
	m.policyRevision = proxywasm.DefineGaugeMetric("tim_filter_policy_revision")
	m.policyRejected = proxywasm.DefineCounterMetric("tim_filter_policy_rejected")
	m.policyErrors = proxywasm.DefineCounterMetric("tim_filter_policy_fetch_errors")
	m.memoHits = proxywasm.DefineCounterMetric("tim_filter_memo_hits")
	m.memoMisses = proxywasm.DefineCounterMetric("tim_filter_memo_misses")
	m.memoEvictions = proxywasm.DefineCounterMetric("tim_filter_memo_evictions")
	m.memoSkipped = proxywasm.DefineCounterMetric("tim_filter_memo_skipped")
	return m
}

func (m *metrics) count(check, outcome int) { m.pending[check][outcome]++ }

// flush reports the pending counts and the memo's (on every tick, at most
// a second apart: well within Envoy's stats flush interval).
func (m *metrics) flush(mm *memo) {
	if mm != nil {
		st := mm.takeStats()
		for _, c := range [...]struct {
			c proxywasm.MetricCounter
			n uint64
		}{{m.memoHits, st.hits}, {m.memoMisses, st.misses}, {m.memoEvictions, st.evictions}, {m.memoSkipped, st.skipped}} {
			if c.n > 0 {
				c.c.Increment(c.n)
			}
		}
	}
	for c := range m.pending {
		for o, n := range m.pending[c] {
			if n > 0 {
				m.checks[c][o].Increment(n)
				m.pending[c][o] = 0
			}
		}
	}
}

// logDenial writes the decision-log line of a denial and returns its id.
// Identifiers appear only as short SHA-256 prefixes, so that the log can
// correlate requests without holding user IDs, client ids or server names.
func (p *plugin) logDenial(s *stream, check, status int, reason string) string {
	return p.logDecision(s, check, status, reason, "")
}

// logDecision writes a decision-log line; outcome empty means a denial.
func (p *plugin) logDecision(s *stream, check, status int, reason, outcome string) string {
	id := decisionID()
	var sb strings.Builder
	sb.WriteString("tim-filter: decision id=")
	sb.WriteString(id)
	if outcome != "" {
		sb.WriteString(" outcome=")
		sb.WriteString(outcome)
	} else if p.cfg.DryRun {
		sb.WriteString(" outcome=dry-run-deny")
	} else {
		sb.WriteString(" outcome=deny")
	}
	sb.WriteString(" check=")
	sb.WriteString(checkNames[check])
	if p.policy != nil {
		sb.WriteString(" revision=")
		sb.WriteString(p.policy.Revision)
	}
	sb.WriteString(" status=")
	sb.WriteString(itoa(status))
	sb.WriteString(" direction=")
	sb.WriteString(p.cfg.Direction)
	sb.WriteString(" route=")
	sb.WriteString(s.f.route.Name)
	if s.f.route.Endpoint == "" && s.f.segs.Len() > 0 {
		// Which API an unknown endpoint belongs to, for operators: the
		// first three segments, each only if it is a plain word (an ID,
		// address or token in them is written as "*").
		sb.WriteString(" prefix=")
		for i := 0; i < 3 && i < s.f.segs.Len(); i++ {
			sb.WriteString("/")
			if seg := s.f.segs.Seg(i); plainWord(seg) {
				sb.WriteString(seg)
			} else {
				sb.WriteString("*")
			}
		}
	}
	sb.WriteString(" reason=\"")
	sb.WriteString(strings.ReplaceAll(reason, "\"", "'"))
	sb.WriteString("\"")
	field := func(name, v string) {
		if v != "" {
			sb.WriteString(" ")
			sb.WriteString(name)
			sb.WriteString("=")
			sb.WriteString(hashID(v))
		}
	}
	field("client", s.f.clientID)
	if s.f.hasXM {
		field("origin", s.f.origin)
		field("destination", s.f.destination)
	}
	field("host", s.f.host)
	field("inviter", s.f.inviter)
	field("invitee", s.f.invitee)
	for i, inv := range s.f.invitees {
		if i == 4 {
			break
		}
		field("invitee", inv)
	}
	proxywasm.LogWarn(sb.String())
	return id
}

// hashID is the first 12 hex digits of the SHA-256 of an identifier.
func hashID(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:6])
}

// plainWord reports whether a path segment is an API word (letters, digits,
// "_", "-", ".", at most 32 bytes), never a user, room or alias ID.
func plainWord(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// decisionID is the random id of a decision, sent in x-tim-decision-id and logged.
func decisionID() string {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// revisionGauge numbers a policy revision for a metric, which proxy-wasm
// allows only as a number: the value of its first 8 hex digits (revision
// 139661765b1cb904 is 0x13966176 = 328556918), so that the revision a proxy
// holds can be read off its metrics; 0 for a revision that does not start so.
func revisionGauge(rev string) int64 {
	if len(rev) < 8 {
		return 0
	}
	var n int64
	for i := 0; i < 8; i++ {
		c := rev[i]
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		default:
			return 0
		}
	}
	return n
}

// setGauge sets g to v (the ABI only adds; every VM sets the same value).
func setGauge(g proxywasm.MetricGauge, v int64) { g.Add(v - g.Value()) }
