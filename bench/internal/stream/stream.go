// Package stream sends one request through a proxyhost VM the way the
// benchmark programs measure it: headers, then the body if any, and the
// request must pass. One loop, so that the filter and shadow figures
// measure the same host work.
package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/timfd/fachdienst/proxyhost"
)

// Config is the filter's plugin configuration for a role, trusting the
// given root certificate (PEM).
func Config(role string, rootPEM []byte) []byte {
	cfg, _ := json.Marshal(map[string]any{
		"role":          role,
		"control_plane": map[string]any{"cluster": "control", "authority": "control", "credential_header": "x-secret", "credential": "bench"},
		"trust_anchors": string(rootPEM),
	})
	return cfg
}

// Start loads the module in a new runtime and starts its plugin. With cfg
// nil it is the pass-through; otherwise the filter, whose start-up callouts
// are answered with list (the federation list) and policy (everything else).
func Start(ctx context.Context, wasm, cfg, policy, list []byte) (*proxyhost.VM, *proxyhost.Runtime, error) {
	rt, err := proxyhost.NewRuntime(ctx, wasm, proxyhost.Options{})
	if err != nil {
		return nil, nil, err
	}
	vm, err := rt.NewVM(ctx)
	if err != nil {
		rt.Close(ctx)
		return nil, nil, err
	}
	if cfg == nil {
		if ok, err := vm.StartPlugin(nil); err != nil || !ok {
			rt.Close(ctx)
			return nil, nil, fmt.Errorf("pass-through start: %v", err)
		}
		return vm, rt, nil
	}
	if ok, err := vm.StartPlugin(cfg); err != nil || !ok {
		rt.Close(ctx)
		return nil, nil, fmt.Errorf("filter start: %v %v", err, vm.Logs(proxyhost.LogCritical))
	}
	for _, c := range vm.PendingCallouts() {
		body := policy
		if strings.HasPrefix(c.Header(":path"), "/internal/v1/federation-list") {
			body = list
		}
		if err := vm.RespondCallout(c.ID, [][2]string{{":status", "200"}}, body); err != nil {
			rt.Close(ctx)
			return nil, nil, err
		}
	}
	return vm, rt, nil
}

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
