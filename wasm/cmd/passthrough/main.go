// Command passthrough is a proxy-wasm HTTP filter that lets every request
// through. It is built exactly like the
// messenger-proxy filter and is the baseline the filter's benchmarks are
// measured against.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct {
	types.DefaultHttpContext
}

// OnHttpRequestHeaders lets the request through without looking at it: the
// baseline is the cost of the host and the SDK's dispatch alone.
func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	return types.ActionContinue
}
