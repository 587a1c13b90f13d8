package envoy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// pluginRole checks that a filter's plugin configuration is JSON and returns its role.
func pluginRole(t *testing.T, cfg []byte) string {
	t.Helper()
	var c struct {
		Role string `json:"role"`
	}
	require.NoError(t, json.Unmarshal(cfg, &c), "plugin configuration is not JSON: %s", cfg)
	return c.Role
}
