// Package stream sends one request through a proxyhost VM the way the
// benchmark programs measure it: headers, then the body if any, and the
// request must pass. One loop, so that the filter and shadow figures
// measure the same host work.
package stream

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/timfd/fachdienst/proxyhost"
)

// Pass runs one request through the VM; it is an error if the request is
// not passed upstream.
func Pass(vm *proxyhost.VM, headers [][2]string, body []byte) error {
	st, err := vm.NewStream()
	if err != nil {
		return err
	}
	a, err := vm.RequestHeaders(st, headers, body == nil)
	if err != nil {
		return err
	}
	if body != nil && st.Local == nil {
		if a, err = vm.RequestBody(st, body, true); err != nil {
			return err
		}
	}
	if st.Local != nil || (a != proxyhost.ActionContinue && !st.Resumed) {
		return fmt.Errorf("request %s %s not passed: action %d local %+v logs %v", Header(headers, ":method"), Header(headers, ":path"), a, st.Local, vm.Logs(proxyhost.LogWarn))
	}
	return vm.Done(st)
}

// Numbered is the request with "{n}" replaced by n in header values and
// body, for requests that must be new each time.
func Numbered(headers [][2]string, body []byte, n int) ([][2]string, []byte) {
	num := strconv.Itoa(n)
	hs := make([][2]string, len(headers))
	for i, h := range headers {
		hs[i] = [2]string{h[0], strings.ReplaceAll(h[1], "{n}", num)}
	}
	if body != nil {
		body = bytes.ReplaceAll(body, []byte("{n}"), []byte(num))
	}
	return hs, body
}

// Header is the value of the named header, or "".
func Header(hs [][2]string, name string) string {
	for _, h := range hs {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}
