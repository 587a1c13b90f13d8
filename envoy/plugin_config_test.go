package envoy

import "testing"

// pluginRole checks a filter's plugin configuration with the filter's own parser, in the environment
// Envoy hands the VM, and returns its role.
func pluginRole(t *testing.T, cfg []byte) string {
	t.Helper()
	return parsePlugin(t, cfg).Direction
}
