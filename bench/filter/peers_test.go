package main

import (
	"context"
	"testing"
)

// TestPeerAllowsTheWorkloads: OPA's evaluator, asked over loopback as the
// ext_authz peer, allows every request of every scenario and of a stretch
// of each mix with the input the filter builds, as the filter does in the
// benchmark: the workloads are real allowed requests under the same policy,
// and the peer decides the same questions.
func TestPeerAllowsTheWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the policy with OPA")
	}
	ctx := context.Background()
	data, err := benchData()
	if err != nil {
		t.Fatal(err)
	}
	dataJSON, err := peerData(data, 1000)
	if err != nil {
		t.Fatal(err)
	}
	e, err := startExtAuthz(ctx, dataJSON)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	check := func(name, role string, reqs []request) {
		ins, err := inputs(role, dataJSON, reqs)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, in := range ins {
			if err := e.ask(in); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	for _, sc := range scenarios {
		hs, b := numbered(sc, 7)
		check(sc.name, sc.role, []request{{hs, b}})
	}
	for _, m := range mixes {
		reqs, _ := m.sequence(600)
		check(m.name, m.role, reqs)
	}
}
