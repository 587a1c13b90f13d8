//go:build wasip1

package filter

import (
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The request headers are read with the ABI's call directly, into the
// plugin's reused slice of pairs: the SDK's GetHttpRequestHeaders allocates
// a fresh slice per request, a measurable share of the filter's own cost.
// The pairs are views into the buffer the host filled (allocated by the
// SDK's proxy_on_memory_allocate), which the strings keep alive.

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType int32, returnValueData unsafe.Pointer, returnValueSize *int32) int32

const mapTypeHttpRequestHeaders = 0

// requestHeaders returns the request's headers in buf's storage.
func requestHeaders(buf [][2]string) ([][2]string, error) {
	var raw *byte
	var size int32
	if st := proxyGetHeaderMapPairs(mapTypeHttpRequestHeaders, unsafe.Pointer(&raw), &size); st != 0 {
		return nil, types.ErrorStatusBadArgument
	}
	if raw == nil || size < 4 {
		return buf[:0], nil
	}
	return parseHeaderPairs(buf[:0], unsafe.Slice(raw, size))
}
