package filter

import (
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// parseHeaderPairs decodes the proxy-wasm map layout (count, the key and
// value sizes, then every key and value followed by a NUL) into views of b
// appended to out. A layout that does not fit b is an error, never a read
// past it.
func parseHeaderPairs(out [][2]string, b []byte) ([][2]string, error) {
	if len(b) < 4 {
		return nil, types.ErrorStatusBadArgument
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-4)/8 {
		return nil, types.ErrorStatusBadArgument
	}
	sizes, data := 4, 4+8*n
	// The pairs are stored string by string: appending a [2]string copies
	// 32 bytes, a bulk-memory call in Wasm.
	base := len(out)
	out = slices.Grow(out, n)[:base+n]
	for i := 0; i < n; i++ {
		ks := int(binary.LittleEndian.Uint32(b[sizes:]))
		vs := int(binary.LittleEndian.Uint32(b[sizes+4:]))
		sizes += 8
		if ks > len(b) || vs > len(b) || data+ks+1+vs+1 > len(b) {
			return nil, types.ErrorStatusBadArgument
		}
		o := &out[base+i]
		o[0] = unsafe.String(&b[data], ks)
		data += ks + 1
		o[1] = unsafe.String(&b[data], vs)
		data += vs + 1
	}
	return out, nil
}
