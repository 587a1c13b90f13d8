package proxyhost_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// controlPlane serves the fixture's list and policy as the control plane's
// internal API does (credential checked, 204 when the proxy is current) until
// the test ends, and returns its address.
func (fx fixture) controlPlane(t *testing.T) *url.URL {
	t.Helper()
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Tim-Proxy-Secret") != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/internal/v1/federation-list":
			if r.URL.Query().Get("version") == "7" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Header().Set("Content-Type", "application/jose")
			w.Header().Set("X-Federation-Version", "7")
			w.Write(fx.jws)
		case "/internal/v1/policy":
			if r.URL.Query().Get("revision") == fx.revision {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Write(fx.policyDoc)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(control.Close)
	u, _ := url.Parse(control.URL)
	return u
}

// pluginConfig is the filter's configuration for role, with the control plane
// of controlPlane as cluster "control".
func (fx fixture) pluginConfig(role string) []byte {
	cfg, _ := json.Marshal(map[string]any{
		"role":          role,
		"control_plane": map[string]any{"cluster": "control", "authority": "control.internal", "credential_header": "x-tim-proxy-secret", "credential": "secret"},
		"trust_anchors": fx.rootPEM,
	})
	return cfg
}
