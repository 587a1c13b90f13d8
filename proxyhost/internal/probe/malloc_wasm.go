//go:build wasip1

package main

import (
	"crypto/rand"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// malloc is what the host calls to place data in the guest; it makes the
// host call x-malloc named, once.
//
//go:wasmexport malloc
func malloc(size uint32) *byte {
	call := mallocCall
	mallocCall = ""
	switch call {
	case "proxy_log":
		proxywasm.LogInfo("in malloc")
	case "proxy_get_property":
		_, _ = proxywasm.GetProperty([]string{"x"})
	case "clock_time_get":
		_ = time.Now()
	case "random_get":
		var b [8]byte
		_, _ = rand.Read(b[:])
	}
	b := make([]byte, max(int(size), 1))
	return &b[0]
}
