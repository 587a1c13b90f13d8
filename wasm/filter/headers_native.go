//go:build !wasip1

package filter

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// requestHeaders returns the request's headers (natively, through the SDK
// and its emulator; the module reads them directly, see headers_wasm.go).
func requestHeaders([][2]string) ([][2]string, error) {
	return proxywasm.GetHttpRequestHeaders()
}
