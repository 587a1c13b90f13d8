package plancompile

import "github.com/timfd/fachdienst/wasm/planvm"

// vmBuiltins is the set of builtins the filter's plan VM implements; a plan
// that calls anything else could not be loaded by the filter.
func vmBuiltins() map[string]bool {
	names := planvm.Builtins()
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}
