package filter

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Secrets and trust anchors may come from the environment Envoy hands the VM (host_env_keys).
func TestConfigFromEnvironment(t *testing.T) {
	pki, err := fedlisttest.NewPKI("ES256", fedlisttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TIM_INTERNAL_SECRET": "Bearer s3cret-s3cret-s3cret", "TIM_TRUST_ANCHORS": string(pki.RootPEM())}
	raw, _ := json.Marshal(map[string]any{
		"role": "client",
		"control_plane": map[string]any{
			"cluster": "tim_control_internal", "authority": "tim-control",
			"credential_header": "authorization", "credential_env": "TIM_INTERNAL_SECRET",
		},
		"trust_anchors_env": "TIM_TRUST_ANCHORS",
	})
	c, err := parseConfig(raw, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Credential != env["TIM_INTERNAL_SECRET"] {
		t.Errorf("credential %q, want it from the environment", c.Credential)
	}
	if c.Trust == nil || c.Trust.Len() != 1 {
		t.Errorf("trust anchors not read from the environment")
	}
}

// validConfig is a configuration that parses, changed by over (nil deletes a
// member).
func validConfig(t *testing.T, over map[string]any) []byte {
	t.Helper()
	pki, err := fedlisttest.NewPKI("ES256", fedlisttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{
		"role": "client",
		"control_plane": map[string]any{
			"cluster": "tim_control_internal", "authority": "tim-control",
			"credential_header": "authorization", "credential": "Bearer x",
		},
		"trust_anchors": string(pki.RootPEM()),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The configuration is read strictly; the error names the member.
func TestConfigStrict(t *testing.T) {
	cp := func(extra map[string]any) map[string]any {
		m := map[string]any{"cluster": "c", "authority": "a", "credential_header": "authorization", "credential": "Bearer x"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		name string
		raw  []byte // used instead of validConfig(over) when set
		over map[string]any
		want string // "" = valid
	}{
		{name: "valid", want: ""},
		{name: "null members are absent", over: map[string]any{"fail_mode": json.RawMessage("null"), "policy": json.RawMessage("null"), "max_body_bytes": json.RawMessage("null")}},
		{name: "unknown member", over: map[string]any{"rol": "client"}, want: `unknown field "rol"`},
		{name: "unknown nested member", over: map[string]any{"control_plane": cp(map[string]any{"timeot": "2s"})}, want: `unknown field "control_plane.timeot"`},
		{name: "member names are exact", over: map[string]any{"Role": "client"}, want: `unknown field "Role"`},
		{name: "role not a string", over: map[string]any{"role": 1}, want: "role: must be a string"},
		{name: "nested not a string", over: map[string]any{"control_plane": cp(map[string]any{"timeout": 2})}, want: "control_plane.timeout: must be a string"},
		{name: "control_plane not an object", over: map[string]any{"control_plane": "c"}, want: "control_plane: must be an object"},
		{name: "max_body_bytes with fraction", over: map[string]any{"max_body_bytes": 2048.5}, want: "max_body_bytes: must be an integer"},
		{name: "max_body_bytes as text", over: map[string]any{"max_body_bytes": "2048"}, want: "max_body_bytes: must be an integer"},
		{name: "max_body_bytes huge", over: map[string]any{"max_body_bytes": json.RawMessage("1e30")}, want: "max_body_bytes: must be an integer"},
		{name: "max_body_bytes beyond int64", over: map[string]any{"max_body_bytes": json.RawMessage("99999999999999999999")}, want: "max_body_bytes: must be an integer"},
		{name: "not an object", raw: []byte(`["client"]`), want: "configuration is not a JSON object"},
		{name: "not JSON", raw: []byte(`{"role":`), want: "configuration is not valid JSON for the filter"},
		{name: "trailing data", raw: append(validConfig(t, nil), "{}"...), want: "trailing data"},
		{name: "empty", raw: []byte(" "), want: "configuration is not valid JSON for the filter"},
		{name: "policy not an object", over: map[string]any{"policy": "p"}, want: "policy: not a policy document: not a JSON object"},
		{name: "policy without plan", over: map[string]any{"policy": map[string]any{"revision": "r"}}, want: "policy: plan: missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := c.raw
			if raw == nil {
				raw = validConfig(t, c.over)
			}
			_, err := parseConfig(raw, func(string) string { return "" })
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid configuration rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// The policy document's revision is a string or the text of a number; the
// data defaults to an empty object.
func TestParsePolicyDocument(t *testing.T) {
	plan, err := os.ReadFile("testdata/proxy-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, revision, data string
		wantRev, wantErr     string
	}{
		{name: "string revision", revision: `"r7"`, wantRev: "r7"},
		{name: "number revision", revision: `12`, wantRev: "12"},
		{name: "large number revision", revision: `123456789012345678901234567890`, wantRev: "123456789012345678901234567890"},
		{name: "no revision", wantRev: ""},
		{name: "revision of another type", revision: `{"v":1}`, wantRev: ""},
		{name: "data", revision: `"r"`, data: `{"allowed":["x"]}`, wantRev: "r"},
		{name: "null data", revision: `"r"`, data: `null`, wantRev: "r"},
		{name: "data not an object", revision: `"r"`, data: `[1]`, wantErr: "data: must be an object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := `{"plan":` + string(plan)
			if c.revision != "" {
				doc += `,"revision":` + c.revision
			}
			if c.data != "" {
				doc += `,"data":` + c.data
			}
			p, err := ParsePolicy([]byte(doc + "}"))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Revision != c.wantRev {
				t.Errorf("revision %q, want %q", p.Revision, c.wantRev)
			}
			if p.Data.Kind() != planvm.KindObject {
				t.Errorf("data is %v, want an object", p.Data.Kind())
			}
		})
	}
}

// TestEndpointRouter: the listener's table becomes its router; a table
// that cannot be read is an error (the filter then knows no endpoint and
// refuses every path), and no table at all is no router.
func TestEndpointRouter(t *testing.T) {
	parse := func(s string) planvm.Value {
		v, err := planvm.ParseJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	r, err := endpointRouter(parse(`{"config":{"endpoints":{"client":{"/a/{x}":{"GET":true}},"federation":{"/b":{"GET":true}}}}}`), "client")
	if err != nil || r == nil {
		t.Fatalf("router %v, %v", r, err)
	}
	var p matrix.Path
	if p.ParsePath("/a/1") != nil || r.Route("GET", &p).Endpoint != "/a/{x}" {
		t.Error("/a/1 not routed")
	}
	if p.ParsePath("/b") != nil || r.Route("GET", &p).Endpoint != "" {
		t.Error("the other listener's endpoint routed")
	}
	for _, bad := range []string{
		`{"config":{"endpoints":{"client":["/a"]}}}`,
		`{"config":{"endpoints":{"client":{"/a/{x}":{},"/a/{y}":{}}}}}`,
		`{"config":{"endpoints":{"client":{"/a/../b":{}}}}}`,
	} {
		if _, err := endpointRouter(parse(bad), "client"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if r, err := endpointRouter(parse(`{"config":{}}`), "egress"); r != nil || err != nil {
		t.Errorf("no table: %v, %v", r, err)
	}
}
