package proxyhost

import (
	"context"
	"sort"

	"github.com/tetratelabs/wazero"
)

// EnvoyWASI is the WASI subset Envoy (≥ 1.33) provides to Wasm modules. A
// module importing any other WASI function fails to load there with
// "missing import".
var EnvoyWASI = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_time_get": true, "random_get": true, "proc_exit": true,
	"fd_write": true, "fd_read": true, "fd_seek": true, "fd_close": true,
	"fd_fdstat_get": true, "fd_fdstat_set_flags": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
	"path_open": true, "poll_oneoff": true, "sched_yield": true,
}

// ModuleInterface lists a module's imported functions ("module.name") and
// exported function names, sorted.
func ModuleInterface(ctx context.Context, wasm []byte) (imports, exports []string, err error) {
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(compilationCache("")))
	defer r.Close(ctx)
	m, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		imports = append(imports, mod+"."+name)
	}
	for name := range m.ExportedFunctions() {
		exports = append(exports, name)
	}
	sort.Strings(imports)
	sort.Strings(exports)
	return imports, exports, nil
}
