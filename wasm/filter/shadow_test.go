//go:build !wasip1

package filter_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/timfd/fachdienst/proxyhost"
)

// A shadow candidate changes no answer; the filter counts and logs (hashed) exactly the requests whose
// decision would differ, reports the counts with its next policy fetch, and stops when the candidate is
// dropped.
func TestShadowCandidate(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.start(config("client", nil))
		var inForce, cand map[string]json.RawMessage
		if err := json.Unmarshal(policyDoc, &inForce); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(policyDoc2, &cand); err != nil {
			t.Fatal(err)
		}
		withShadow := mustJSON(map[string]any{"revision": "r1", "plan": inForce["plan"], "data": inForce["data"],
			"shadow": map[string]any{"revision": "r2", "plan": cand["plan"], "data": cand["data"]}})

		e.clk.advance(61 * time.Second)
		e.h.tick()
		c := e.mustPending("/internal/v1/policy")
		if c.header("x-tim-proxy") != "client" || !strings.HasSuffix(c.path, "?revision=r1") {
			t.Fatalf("policy fetch: %s %v", c.path, c.headers)
		}
		e.h.respond(c, 200, nil, withShadow)

		// The known set: tim-client-2.0 is refused by r1 and approved by r2 (twice, with the same
		// headers, which must not skip the candidate); tim-client-1.0 is approved by both.
		sync2 := withUA(clientReq("GET", "/_matrix/client/v3/sync"), "X/2,tim-client-2.0")
		for i := 0; i < 2; i++ {
			_, o := e.do(sync2, "")
			e.expect("in force: r1 refuses tim-client-2.0", o, 403, "M_FORBIDDEN", "")
		}
		_, o := e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
		e.expect("both allow", o, 0, "", "")

		var differ []string
		for _, l := range e.h.logs(proxyhost.LogWarn) {
			if strings.Contains(l, "shadow differs") {
				differ = append(differ, l)
			}
		}
		if len(differ) != 2 {
			t.Fatalf("differing lines: %d, want 2: %v", len(differ), differ)
		}
		for _, l := range differ {
			if !strings.Contains(l, "in_force=deny:403 candidate_outcome=allow") || !strings.Contains(l, "candidate=r2") || strings.Contains(l, "tim-client-2.0") {
				t.Errorf("line: %s", l)
			}
		}

		e.clk.advance(61 * time.Second)
		e.h.tick()
		if n := e.h.counter("tim_filter_shadow_differ"); n != 2 {
			t.Errorf("tim_filter_shadow_differ = %d, want 2", n)
		}
		if n := e.h.counter("tim_filter_shadow_evaluated"); n != 3 {
			t.Errorf("tim_filter_shadow_evaluated = %d, want 3", n)
		}
		c = e.mustPending("/internal/v1/policy")
		if !strings.HasSuffix(c.path, "?revision=r1&shadow=r2&shadow_evaluated=3&shadow_differ=2") {
			t.Errorf("report: %s", c.path)
		}
		// Dropped: the same revision without a candidate is a new document for the filter.
		e.h.respond(c, 200, nil, policyDoc)
		_, o = e.do(sync2, "")
		e.expect("r1 still decides", o, 403, "M_FORBIDDEN", "")
		e.clk.advance(61 * time.Second)
		e.h.tick()
		if n := e.h.counter("tim_filter_shadow_evaluated"); n != 3 {
			t.Errorf("evaluated after the drop: %d", n)
		}
		if c := e.mustPending("/internal/v1/policy"); strings.Contains(c.path, "shadow") {
			t.Errorf("report after the drop: %s", c.path)
		}
	})
}
