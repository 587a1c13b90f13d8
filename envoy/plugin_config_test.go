package envoy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
	"github.com/timfd/fachdienst/wasm/filter"
)

// pluginRole checks a filter's plugin configuration with the filter's own parser, in the environment
// Envoy hands the VM, and returns its role.
func pluginRole(t *testing.T, cfg []byte) string {
	t.Helper()
	pki, err := fedlisttest.NewPKI("BP256R1", fedlisttest.Options{})
	require.NoError(t, err)
	t.Setenv("TIM_INTERNAL_AUTHORIZATION", "Bearer a-shared-secret-of-enough-length")
	t.Setenv("TIM_TRUST_ANCHORS", string(pki.RootPEM()))
	c, err := filter.ParseConfig(cfg)
	require.NoError(t, err, "plugin configuration rejected by the filter: %s", cfg)
	return c.Direction
}
