package proxyhost_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/proxyhost"
)

// TestModulesLoadInEnvoy fails when a compiled filter imports anything
// outside Envoy's WASI set and the proxy-wasm ABI, or lacks the ABI marker.
func TestModulesLoadInEnvoy(t *testing.T) {
	for _, m := range []struct{ env, pkg string }{
		{"TIM_FILTER_WASM", "./wasm/cmd/tim-filter"},
		{"TIM_PASSTHROUGH_WASM", "./wasm/cmd/passthrough"},
	} {
		t.Run(m.pkg, func(t *testing.T) {
			path, err := proxyhost.BuildModule(m.env, m.pkg, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			wasm, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			imports, exports, err := proxyhost.ModuleInterface(context.Background(), wasm)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range imports {
				mod, name, _ := strings.Cut(imp, ".")
				switch {
				case mod == "wasi_snapshot_preview1" && proxyhost.EnvoyWASI[name]:
				case mod == "env" && strings.HasPrefix(name, "proxy_"):
				default:
					t.Errorf("import %s is not provided by Envoy", imp)
				}
			}
			for _, want := range []string{"proxy_abi_version_0_2_0", "proxy_on_request_headers"} {
				if !slices.Contains(exports, want) {
					t.Errorf("module does not export %s", want)
				}
			}
			// Envoy gives the module memory through malloc, or when that
			// is missing through proxy_on_memory_allocate.
			if !slices.Contains(exports, "malloc") && !slices.Contains(exports, "proxy_on_memory_allocate") {
				t.Error("module exports neither malloc nor proxy_on_memory_allocate")
			}
			t.Logf("%s: %d bytes, %d imports", m.pkg, len(wasm), len(imports))
		})
	}
}
