//go:build !wasip1

package filter

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Natively the request is read through the SDK and its emulator; the module
// reads it directly into the stream's buffers (see request_wasm.go).

func requestHeaders([][2]string, *[]byte) ([][2]string, error) {
	return proxywasm.GetHttpRequestHeaders()
}

func requestBody(size int, _ *[]byte) ([]byte, error) {
	return proxywasm.GetHttpRequestBody(0, size)
}
