package internalapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/wasm/fedlist"
	"github.com/timfd/fachdienst/wasm/filter"
)

// TestContractWithFilter feeds the API's answers to the filter's own parsers (docs/architecture.md): what the
// control plane serves must be what the messenger proxy accepts.
func TestContractWithFilter(t *testing.T) {
	s := newStack(t, true)

	// The filter authenticates with a configured header and value; the control plane expects
	// "authorization: Bearer <secret>". The filter must accept that configuration.
	cfgJSON, err := json.Marshal(map[string]any{
		"role": "client",
		"control_plane": map[string]any{
			"cluster": "tim_control", "authority": "tim-control",
			"credential_header": "authorization", "credential": "Bearer " + secret,
		},
		"trust_anchors": string(s.vzd.TrustAnchorPEM()),
	})
	require.NoError(t, err)
	cfg, err := filter.ParseConfig(cfgJSON)
	require.NoError(t, err)
	auth := cfg.Credential
	get := func(path string) answer { return s.do(t, "GET", path, auth, nil) }

	// Federation list: the 200 body verifies with the filter's trust anchors as configured.
	a := get("/internal/v1/federation-list")
	require.Equal(t, 200, a.status)
	l, err := fedlist.Verify(a.body, cfg.Trust, time.Now())
	require.NoError(t, err)
	assert.Equal(t, a.header.Get("X-Federation-Version"), itoa(l.Version))
	// The filter asks with ?version=<its version>: 204 with an empty body.
	a = get("/internal/v1/federation-list?version=" + itoa(l.Version))
	assert.Equal(t, 204, a.status)
	assert.Empty(t, a.body)

	// Policy: the 200 body is a policy document the filter installs; ?revision=<its revision> is 204.
	a = get("/internal/v1/policy")
	require.Equal(t, 200, a.status)
	pol, err := filter.ParsePolicy(a.body)
	require.NoError(t, err)
	assert.Equal(t, s.policy.Current().Revision, pol.Revision)
	assert.Equal(t, 204, get("/internal/v1/policy?revision="+pol.Revision).status)

	// Invite permission: the filter sends {"inviter","invitee"} and reads "allow" as a required bool.
	body, _ := json.Marshal(struct {
		Inviter string `json:"inviter"`
		Invitee string `json:"invitee"`
	}{"@a:a.example.de", "@allowed:b.example.de"})
	a = s.do(t, "POST", "/internal/v1/invite-permission", auth, body)
	require.Equal(t, 200, a.status)
	var ans struct {
		Allow *bool `json:"allow"`
		Stage int   `json:"stage"`
	}
	require.NoError(t, json.Unmarshal(a.body, &ans))
	require.NotNil(t, ans.Allow)
	assert.True(t, *ans.Allow)
	assert.Contains(t, []int{2, 3}, ans.Stage)
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }
