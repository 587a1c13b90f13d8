package plancompile

import (
	"context"
	"encoding/json"
	"io/fs"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// TestPlanAgreesWithOPA loads the compiled proxy plan into the filter's VM
// and checks, for one request per check, that the VM decides exactly as OPA
// evaluating the Rego source does.
func TestPlanAgreesWithOPA(t *testing.T) {
	ctx := context.Background()
	res, err := Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := planvm.Load(res.Plan)
	if err != nil {
		t.Fatalf("VM refuses the plan: %v", err)
	}
	rawData, err := fs.ReadFile(policies.FS, "data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(rawData, &data); err != nil {
		t.Fatal(err)
	}
	cfg := data["config"].(map[string]any)
	cfg["own_domains"] = map[string]any{"home.de": true}
	cfg["client_ids"] = map[string]any{"enforce": true, "approved": map[string]any{"tim-client-1.0": true}}
	data["federation"] = map[string]any{"domains": map[string]any{"fed.de": map[string]any{"isInsurance": false}}}
	dataJSON, _ := json.Marshal(data)

	src, _ := fs.ReadFile(policies.FS, "proxy.rego")
	query, err := rego.New(
		rego.Query("data.tim.proxy.decision"),
		rego.Module("proxy.rego", string(src)),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Store(inmemStore(data)),
	).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}

	inputs := []string{
		`{}`,
		`{"direction":"client","method":"POST","path":"/_matrix/client/v3/login","host":"home.de","route":"login","client_id":"evil","federation_list_expired":false}`,
		`{"direction":"client","method":"GET","path":"/x","host":"home.de","route":"client_other","client_id":"tim-client-1.0","federation_list_expired":false}`,
		`{"direction":"client","method":"POST","path":"/x","host":"home.de","route":"createRoom","client_id":"tim-client-1.0","invitees":[{"mxid":"@a:fed.de","domain":"fed.de"},{"mxid":"@b:fed.de","domain":"fed.de"}],"federation_list_expired":false}`,
		`{"direction":"client","method":"POST","path":"/x","host":"home.de","route":"invite","client_id":"tim-client-1.0","invitees":[{"mxid":"@a:evil.de","domain":"evil.de"}],"federation_list_expired":false}`,
		`{"direction":"client","method":"POST","path":"/x","host":"home.de","route":"invite","client_id":"tim-client-1.0","invitees":[{"mxid":"@a:fed.de","domain":"fed.de"}],"federation_list_expired":true}`,
		`{"direction":"client","method":"GET","path":"/x","host":"home.de","route":"media","client_id":"tim-client-1.0","federation_list_expired":false}`,
		`{"direction":"federation","method":"PUT","path":"/_matrix/federation/v1/send/1","host":"home.de","route":"federation_other","federation_list_expired":false}`,
		`{"direction":"federation","method":"PUT","path":"/_matrix/federation/v1/send/1","host":"home.de","route":"federation_other","xmatrix":{"origin":"evil.de"},"federation_list_expired":false}`,
		`{"direction":"federation","method":"PUT","path":"/_matrix/federation/v2/invite/r/e","host":"home.de","route":"federation_invite","xmatrix":{"origin":"fed.de"},"invite":{"inviter":"@a:fed.de","invitee":"@b:home.de","inviter_domain":"fed.de","invitee_domain":"home.de"},"federation_list_expired":false}`,
		`{"direction":"federation","method":"GET","path":"/_matrix/federation/v1/openid/userinfo","host":"home.de","route":"openid_userinfo","federation_list_expired":false}`,
		`{"direction":"egress","method":"GET","path":"/.well-known/matrix/server","host":"evil.de","route":"well_known_server","federation_list_expired":false}`,
		`{"direction":"egress","method":"GET","path":"/_matrix/federation/v1/version","host":"fed.de","route":"federation_other","federation_list_expired":false}`,
		`{"direction":"egress","method":"GET","path":"/x","route":"other","federation_list_expired":false}`,
		`{"direction":"federation","method":"GET","path":"/_matrix/key/v2/server/abc","host":"home.de","route":"key_server","federation_list_expired":false}`,
		`{"direction":"federation","method":"GET","path":"/_matrix/key/v2/server/../../federation/v1/send/1","host":"home.de","route":"federation_other","federation_list_expired":false}`,
		`{"direction":"client","method":"GET","path":"/.well-known/matrix/server","host":"home.de","route":"well_known_server","federation_list_expired":false}`,
		`{"direction":"client","method":"POST","path":"/x","host":"home.de","route":"invite","client_id":"tim-client-1.0","invitees":[{"mxid":"@a:fed.de","domain":"fed.de"}]}`,
		`{"direction":"client","method":"POST","path":"/x","host":"home.de","route":"invite","client_id":"tim-client-1.0","federation_list_expired":false}`,
		`{"direction":"sideways","method":"GET","path":"/"}`,
	}
	for _, in := range inputs {
		var input any
		if err := json.Unmarshal([]byte(in), &input); err != nil {
			t.Fatal(err)
		}
		rs, err := query.Eval(ctx, rego.EvalInput(input))
		if err != nil || len(rs) != 1 {
			t.Fatalf("OPA on %s: %v %v", in, rs, err)
		}
		want := rs[0].Expressions[0].Value

		out, ok, err := prog.EvalJSON(policies.ProxyDecision, []byte(in), dataJSON)
		if err != nil || !ok {
			t.Errorf("VM on %s: defined=%v err=%v", in, ok, err)
			continue
		}
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("input %s:\n VM  %s\n OPA %v", in, out, want)
		}
	}
}

// normalize maps OPA's json.Number results and the VM's float64 ones to one
// representation.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func inmemStore(data map[string]any) storage.Store { return inmem.NewFromObject(data) }

// BenchmarkVMDecision measures the proxy decisions of costCases in the plan
// VM against a federation list of 10 000 domains (the lookup must not depend
// on its size) and the default exemptions.
func BenchmarkVMDecision(b *testing.B) {
	res, err := Compile(context.Background(), policies.FS, policies.ProxyDecision)
	if err != nil {
		b.Fatal(err)
	}
	prog, err := planvm.Load(res.Plan)
	if err != nil {
		b.Fatal(err)
	}
	dv := costData(b, 10000, 0)
	for _, bc := range costCases {
		in, err := planvm.ParseJSON([]byte(bc.input))
		if err != nil {
			b.Fatal(err)
		}
		steps := minSteps(b, prog, in, dv)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := prog.Eval(policies.ProxyDecision, in, dv); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
			b.ReportMetric(float64(steps), "steps/op")
		})
	}
}

// minSteps finds the smallest step limit under which the decision completes:
// a cost figure that, unlike a duration, does not depend on the machine.
func minSteps(b testing.TB, prog *planvm.Program, in, data planvm.Value) int {
	lo, hi := 1, planvm.DefaultStepLimit
	for lo < hi {
		mid := (lo + hi) / 2
		if _, _, err := prog.Eval(policies.ProxyDecision, in, data, planvm.WithStepLimit(mid)); err != nil {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
