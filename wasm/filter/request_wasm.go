//go:build wasip1

package filter

import (
	"slices"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The request's headers and body are read with the ABI's calls directly.
// The SDK's GetHttpRequestHeaders allocates a fresh slice of pairs per
// request, a measurable share of the filter's own cost; here the pairs go
// into the plugin's reused slice.
//
// The host copies what it returns into memory it asks the module for. The
// module exports malloc, which Envoy (proxy-wasm-cpp-host) calls in
// preference to the SDK's proxy_on_memory_allocate: during these two reads
// it hands out the stream's own buffer, reused from request to request and
// wiped when the request ends, and otherwise a fresh slice as the SDK does.
// A request whose decision the memo knows then allocates nothing, so the
// collector does not run in the steady state (with a large federation list
// each run had to mark the whole list), and no header or body outlives its
// request in memory (docs/decisions/filter.md, F19).

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType int32, returnValueData unsafe.Pointer, returnValueSize *int32) int32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufferType, start, maxSize int32, returnBufferData unsafe.Pointer, returnBufferSize *int32) int32

const (
	mapTypeHttpRequestHeaders = 0
	bufferTypeHttpRequestBody = 0
)

// hostAlloc, when set, is where malloc puts its next allocation.
var hostAlloc *[]byte

// The calls' results. Locals would escape to the heap, being passed to the
// host by address: one allocation per read.
var (
	retData *byte
	retSize int32
)

//go:wasmexport malloc
func malloc(size uint32) *byte {
	n := max(int(size), 1)
	if into := hostAlloc; into != nil {
		hostAlloc = nil
		*into = slices.Grow((*into)[:0], n)[:n]
		return &(*into)[0]
	}
	b := make([]byte, n)
	return &b[0]
}

// readInto makes one of the calls above with malloc allocating in *into
// and returns what the host wrote.
func readInto(into *[]byte, call func() int32) ([]byte, int32) {
	hostAlloc = into
	st := call()
	hostAlloc = nil
	data, size := retData, retSize
	retData, retSize = nil, 0
	if st != 0 || data == nil {
		return nil, st
	}
	return unsafe.Slice(data, size), st
}

// requestHeaders returns the request's headers in buf's storage, as views
// of *into.
func requestHeaders(buf [][2]string, into *[]byte) ([][2]string, error) {
	b, st := readInto(into, func() int32 {
		return proxyGetHeaderMapPairs(mapTypeHttpRequestHeaders, unsafe.Pointer(&retData), &retSize)
	})
	if st != 0 {
		return nil, types.ErrorStatusBadArgument
	}
	if len(b) < 4 {
		return buf[:0], nil
	}
	return parseHeaderPairs(buf[:0], b)
}

// requestBody returns the first size bytes of the request body, in *into.
func requestBody(size int, into *[]byte) ([]byte, error) {
	b, st := readInto(into, func() int32 {
		return proxyGetBufferBytes(bufferTypeHttpRequestBody, 0, int32(size), unsafe.Pointer(&retData), &retSize)
	})
	if st != 0 || b == nil {
		return nil, types.ErrorStatusNotFound
	}
	return b, nil
}
