package plancompile

import (
	"context"
	"encoding/json"
	"io/fs"
	"strconv"
	"testing"

	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// costCases are the decisions whose cost the policy keeps small: the three
// common paths plus one exact and one prefix exemption.
var costCases = []struct {
	name, input string
	budget      int // steps; the policy before the exemption index took 160 to 250; the endpoint table and the X-Matrix destination check added 20 to 60; the blocked-user lookup per invitee about 10
}{
	{"client_get", `{"direction":"client","method":"GET","path":"/_matrix/client/v3/sync","host":"home.de","route":"client_other","endpoint":"/_matrix/client/r0|v3|unstable/sync","client_id":"c","federation_list_expired":false}`, 115},
	{"federation_send", `{"direction":"federation","method":"PUT","path":"/_matrix/federation/v1/send/1","host":"home.de","route":"federation_other","endpoint":"/_matrix/federation/v1/send/{txnID}","xmatrix":{"origin":"d9999.de","destination":"home.de","origin_domain":"d9999.de","destination_domain":"home.de"},"federation_list_expired":false}`, 170},
	{"federation_get", `{"direction":"federation","method":"GET","path":"/_matrix/federation/v1/state/r","host":"home.de","route":"federation_other","endpoint":"/_matrix/federation/v1/state/{roomID}","xmatrix":{"origin":"d9999.de","destination":"home.de","origin_domain":"d9999.de","destination_domain":"home.de"},"federation_list_expired":false}`, 170},
	{"create_room_1_invitee", `{"direction":"client","method":"POST","path":"/_matrix/client/v3/createRoom","host":"home.de","route":"createRoom","endpoint":"/_matrix/client/r0|v3|unstable/createRoom","client_id":"c","invitees":[{"mxid":"@a:d42.de","domain":"d42.de"}],"federation_list_expired":false}`, 175},
	{"client_invite", `{"direction":"client","method":"POST","path":"/x","host":"home.de","route":"invite","endpoint":"/_matrix/client/r0|v3|unstable/rooms/{roomID}/invite","client_id":"c","invitees":[{"mxid":"@a:d42.de","domain":"d42.de"}],"federation_list_expired":false}`, 185},
	{"exempt_well_known", `{"direction":"federation","method":"GET","path":"/.well-known/matrix/server","host":"home.de","route":"well_known_server","federation_list_expired":false}`, 140},
	{"exempt_key_prefix", `{"direction":"federation","method":"GET","path":"/_matrix/key/v2/server/abc","host":"home.de","route":"key_server","federation_list_expired":false}`, 110},
}

// costData is policies/data.json with the given number of federation domains
// and of further exact-path exemptions on each listener.
func costData(t testing.TB, domains, exemptions int) planvm.Value {
	t.Helper()
	raw, err := fs.ReadFile(policies.FS, "data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	d := map[string]any{}
	for i := range domains {
		d["d"+strconv.Itoa(i)+".de"] = map[string]any{"isInsurance": false}
	}
	data["federation"] = map[string]any{"domains": d}
	cfg := data["config"].(map[string]any)
	cfg["client_ids"] = map[string]any{"enforce": true, "approved": map[string]any{"c": true}}
	cfg["own_domains"] = map[string]any{"home.de": true}
	paths := cfg["exempt_paths"].(map[string]any)
	for i := range exemptions {
		n := strconv.Itoa(i)
		byDirection := map[string]any{}
		for _, dir := range []string{"client", "federation", "egress"} {
			byDirection[dir] = map[string]any{"GET": map[string]any{"*": true}}
		}
		paths["/extra/"+n] = byDirection
	}
	b, _ := json.Marshal(data)
	v, err := planvm.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDecisionCostIndependentOfData checks that the common decisions cost
// the same number of VM steps whether the data hold one or a thousand further
// exact-path exemptions, and logs the figures (the domain lookup's
// independence of the list size is BenchmarkVMDecision's and bench/policy's).
func TestDecisionCostIndependentOfData(t *testing.T) {
	res, err := Compile(context.Background(), policies.FS, policies.ProxyDecision)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := planvm.Load(res.Plan)
	if err != nil {
		t.Fatal(err)
	}
	small, large := costData(t, 10000, 1), costData(t, 10000, 1000)
	for _, c := range costCases {
		in, err := planvm.ParseJSON([]byte(c.input))
		if err != nil {
			t.Fatal(err)
		}
		a, b := minSteps(t, prog, in, small), minSteps(t, prog, in, large)
		t.Logf("%-24s %4d steps", c.name, a)
		if a > c.budget {
			t.Errorf("%s: %d steps, budget %d", c.name, a, c.budget)
		}
		if a != b {
			t.Errorf("%s: %d steps with 1 further exact-path exemption, %d with 1000", c.name, a, b)
		}
	}
}
