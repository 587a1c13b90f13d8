package filter

import (
	"encoding/json"
	"testing"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
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
