//go:build !wasip1

package filter_test

import (
	"encoding/json"
	"testing"
	"time"
)

// TestSharedListServesAllVMs: two VMs (two Envoy workers) share one host;
// the list the first fetches reaches the second through shared data, and
// while the first fetch runs the second does not fetch at all.
func TestSharedListServesAllVMs(t *testing.T) {
	clk := &clock{t: baseTime}
	rt := newWasmRuntime(t, clk)
	a := &env{t: t, clk: clk, h: newWasmHost(t, rt)}
	b := &env{t: t, clk: clk, h: newWasmHost(t, rt)}
	if !a.h.startPlugin(config("client", nil)) || !b.h.startPlugin(config("client", nil)) {
		t.Fatal("start")
	}
	if _, ok := a.pending("/internal/v1/federation-list"); !ok {
		t.Fatal("first VM did not fetch the list")
	}
	if _, ok := b.pending("/internal/v1/federation-list"); ok {
		t.Fatal("second VM fetched the list while the first one's fetch was running")
	}
	a.answerList(200, signedList(t, pki, 1, listV1...))
	a.answerPolicy(200, policyDoc)
	if _, ok := b.pending("/internal/v1/policy"); ok {
		t.Fatal("second VM fetched the policy while the first one's fetch was running")
	}
	clk.advance(time.Second)
	b.h.tick()
	_, o := b.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:example.de"]}`)
	b.expect("second VM decides with the shared list", o, 0, "", "")
	if n := b.h.counter("tim_filter_fedlist_updates"); n < 2 {
		t.Errorf("list installs across VMs = %d", n)
	}
}

// TestHeapStaysFlat runs 60 000 requests through the compiled filter and
// checks that the guest's linear memory stops growing: the filter yields to
// the Go scheduler (and so to the GC's background work) only once per
// yieldBudget requests, and this is what shows that often enough. Half the
// requests repeat (memo hits); a sixth are new sends, answered from the
// memo by replaying what the policy observed of their paths; a third are
// new to the policy (a client id never seen, in a profile query and a
// createRoom inviting a new user): each is evaluated, and misses the memo.
func TestHeapStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	clk := &clock{t: baseTime}
	e := &env{t: t, clk: clk, h: newWasmHost(t, newWasmRuntime(t, clk))}
	e.start(config("client", nil))
	h := e.h.(*wasmHost)
	seq := 0
	run := func(n int) {
		for i := 0; i < n; i++ {
			var id uint32
			seq++
			u := "@u" + itoa(seq) + ":partner.de"
			switch i % 6 {
			case 0:
				id, _ = e.do(clientReq("GET", "/_matrix/client/v3/sync"), "")
			case 1:
				id, _ = e.do(clientReq("POST", "/_matrix/client/v3/createRoom"), `{"invite":["@a:partner.de"]}`)
			case 2:
				id, _ = e.do(withUA(clientReq("GET", "/_matrix/client/v3/sync"), "X/1,evil"), "")
			case 3:
				id, _ = e.do(clientReq("PUT", "/_matrix/client/v3/rooms/!r:example.de/send/m.room.message/t"+itoa(seq)), `{"msgtype":"m.text","body":"x"}`)
			case 4:
				id, _ = e.do(withUA(clientReq("GET", "/_matrix/client/v3/profile/"+u), "X/1,c"+itoa(seq)), "")
			default:
				id, _ = e.do(withUA(clientReq("POST", "/_matrix/client/v3/createRoom"), "X/1,c"+itoa(seq)), `{"invite":["`+u+`"]}`)
			}
			e.h.done(id)
			delete(h.st, id)
			delete(h.action, id)
		}
		h.vm.ClearLogs()
	}
	run(10_000)
	after10k := h.vm.MemorySize()
	run(50_000)
	after60k := h.vm.MemorySize()
	t.Logf("guest memory after 10k requests: %d KiB, after 60k: %d KiB", after10k>>10, after60k>>10)
	if after60k > after10k+4<<20 {
		t.Errorf("guest memory grew from %d to %d bytes over 50 000 requests", after10k, after60k)
	}
	// A third of the requests were new to the policy; the sends with new
	// transaction ids were answered from the memo.
	hits, misses := e.h.counter("tim_filter_memo_hits"), e.h.counter("tim_filter_memo_misses")
	t.Logf("memo: %d hits, %d misses", hits, misses)
	if misses < 20_000 || hits < 39_000 || hits+misses != 60_000 {
		t.Errorf("memo hits %d, misses %d over 60 000 requests, a third of them new to the policy", hits, misses)
	}
}

// TestRevisionMetric: the revision in force can be read off the metrics, on
// both hosts (its first 8 hex digits as a number).
func TestRevisionMetric(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(policyDoc, &doc); err != nil {
		t.Fatal(err)
	}
	doc["revision"] = "139661765b1cb904"
	both(t, func(t *testing.T, e *env) {
		if !e.h.startPlugin(config("client", nil)) {
			t.Fatal("start")
		}
		e.answerList(200, signedList(t, pki, 1, listV1...))
		e.answerPolicy(200, mustJSON(doc))
		if got := e.h.counter("tim_filter_policy_revision"); got != 0x13966176 {
			t.Errorf("tim_filter_policy_revision = %d, want %d", got, 0x13966176)
		}
	})
}
