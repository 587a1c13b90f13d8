// Command tim-filter is the messenger-proxy filter compiled to WebAssembly
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) for Envoy's Wasm HTTP
// filter. It only wires the filter package to the proxy-wasm SDK.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/timfd/fachdienst/wasm/filter"
)

func main() {}

func init() {
	proxywasm.SetVMContext(filter.NewVMContext(filter.Options{}))
}
