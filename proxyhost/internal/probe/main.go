// Command probe is a proxy-wasm filter whose every step is told by the
// request, for the tests that pin how proxyhost (like Envoy) treats what a
// filter returns. Request headers:
//
//	x-headers: continue | pause | local | callout   what the headers callback does
//	x-body:    continue | buffer | local | callout  what the body callback does at the
//	           end of the body ("buffer" and the others pause before the end)
//	x-malloc:  a host function the next host-to-guest allocation calls
//
// "callout" dispatches a call to cluster "c" and pauses; its answer resumes
// the request. The plugin start dispatches a call to cluster "start" and
// counts starts in shared data under "starts".
package main

import (
	"encoding/binary"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	for {
		b, cas, err := proxywasm.GetSharedData("starts")
		var n uint64
		if err == nil && len(b) == 8 {
			n = binary.BigEndian.Uint64(b)
		} else {
			cas = 0
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], n+1)
		if proxywasm.SetSharedData("starts", v[:], cas) == nil {
			break
		}
	}
	_, _ = proxywasm.DispatchHttpCall("start", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "start"}}, nil, nil, 1000, func(int, int, int) {})
	_ = proxywasm.SetTickPeriodMilliSeconds(1000)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	body string
}

// mallocCall is the host function the next allocation calls (see malloc).
var mallocCall string

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	h, _ := proxywasm.GetHttpRequestHeader("x-headers")
	s.body, _ = proxywasm.GetHttpRequestHeader("x-body")
	mallocCall, _ = proxywasm.GetHttpRequestHeader("x-malloc")
	switch h {
	case "pause":
		return types.ActionPause
	case "local":
		_ = proxywasm.SendHttpResponse(403, nil, []byte("refused in headers"), -1)
		return types.ActionPause
	case "callout":
		return callout()
	}
	return types.ActionContinue
}

func (s *stream) OnHttpRequestBody(size int, end bool) types.Action {
	b, _ := proxywasm.GetHttpRequestBody(0, size)
	proxywasm.LogInfof("body %d %s end=%t", size, strconv.Quote(string(b)), end)
	if s.body == "" || s.body == "continue" {
		return types.ActionContinue
	}
	if !end {
		return types.ActionPause
	}
	switch s.body {
	case "local":
		_ = proxywasm.SendHttpResponse(403, nil, []byte("refused in body"), -1)
		return types.ActionPause
	case "callout":
		return callout()
	}
	return types.ActionContinue
}

func callout() types.Action {
	_, err := proxywasm.DispatchHttpCall("c", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "c"}}, nil, nil, 1000,
		func(int, int, int) { _ = proxywasm.ResumeHttpRequest() })
	if err != nil {
		proxywasm.LogErrorf("callout: %v", err)
	}
	return types.ActionPause
}
