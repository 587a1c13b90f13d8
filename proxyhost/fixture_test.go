package proxyhost_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"testing"

	"github.com/timfd/fachdienst/control/plancompile"
	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

// fixture is what the tests that run the real filter share: the compiled module,
// the compiled default policy (with its endpoint tables) over the operator's data,
// and a federation list signed by a throw-away PKI.
type fixture struct {
	wasm      []byte
	revision  string
	policyDoc []byte // the body of GET /internal/v1/policy
	jws       []byte // the body of GET /internal/v1/federation-list
	rootPEM   string // the trust anchor of jws
}

// newFixture builds the module (or reads TIM_FILTER_WASM) and signs a list of
// domains, each with a Telematik-ID of its own.
func newFixture(t *testing.T, op policyserve.Operator, domains ...string) fixture {
	t.Helper()
	path, err := proxyhost.BuildModule("TIM_FILTER_WASM", "./wasm/cmd/tim-filter", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := plancompile.Compile(context.Background(), policies.FS, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	pki, err := fedlisttest.NewPKI("BP256R1", fedlisttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var list []fedlisttest.Domain
	for i, d := range domains {
		list = append(list, fedlisttest.Domain{Domain: d, TelematikID: "1-" + string(rune('a'+i))})
	}
	jws, err := pki.Sign(fedlisttest.Payload(7, list))
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := fs.ReadFile(policies.FS, "data.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := policyserve.MergeData(defaults, op)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]any{"revision": plan.Revision, "plan": json.RawMessage(plan.Plan), "data": json.RawMessage(data)})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{wasm: wasm, revision: plan.Revision, policyDoc: doc, jws: jws, rootPEM: string(pki.RootPEM())}
}
