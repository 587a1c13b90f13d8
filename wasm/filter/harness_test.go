//go:build !wasip1

package filter_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/timfd/fachdienst/proxyhost"
	"github.com/timfd/fachdienst/wasm/filter"
)

// host drives the filter through whole HTTP streams. It has two
// implementations: the SDK's native emulator (proxytest) running the filter
// package, and proxyhost running the compiled module in wazero. Every table
// test runs on both.
type host interface {
	startPlugin(config []byte) bool
	newStream() uint32
	requestHeaders(id uint32, headers [][2]string, endOfStream bool) types.Action
	requestBody(id uint32, body []byte, endOfStream bool) types.Action
	done(id uint32)
	// outcome is the stream's state: a local response, passed, or pending.
	outcome(id uint32) outcome
	callouts() []callout // not yet answered, oldest first
	respond(c callout, status int, headers [][2]string, body []byte)
	fail(c callout)
	tick()
	counter(name string) int64
	logs(level int) []string
	clearLogs()
}

type outcome struct {
	status int // 0 when no local response
	body   string
	ctype  string
	passed bool
}

type callout struct {
	key       int // host-specific handle
	contextID uint32
	method    string
	path      string
	authority string
	headers   [][2]string
	body      []byte
}

func (c callout) header(name string) string {
	for _, h := range c.headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

// clock is the controllable time both hosts give the filter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ---- native: proxytest -------------------------------------------------

type nativeHost struct {
	emu      proxytest.HostEmulator
	reset    func()
	streams  []uint32
	consumed map[[2]int]bool // (context id, index) of answered callouts
	action   map[uint32]types.Action
}

var nativeMu sync.Mutex // proxytest keeps global state: one emulator at a time

func newNativeHost(t *testing.T, clk *clock, config []byte) *nativeHost {
	nativeMu.Lock()
	opt := proxytest.NewEmulatorOption().
		WithVMContext(filter.NewVMContext(filter.Options{Now: clk.now})).
		WithPluginConfiguration(config)
	emu, reset := proxytest.NewHostEmulator(opt)
	h := &nativeHost{emu: emu, reset: reset, consumed: map[[2]int]bool{}, action: map[uint32]types.Action{}}
	t.Cleanup(func() { reset(); nativeMu.Unlock() })
	return h
}

func (h *nativeHost) startPlugin([]byte) bool {
	return h.emu.StartPlugin() == types.OnPluginStartStatusOK
}

func (h *nativeHost) newStream() uint32 {
	id := h.emu.InitializeHttpContext()
	h.streams = append(h.streams, id)
	return id
}

func (h *nativeHost) requestHeaders(id uint32, hs [][2]string, eos bool) types.Action {
	a := h.emu.CallOnRequestHeaders(id, hs, eos)
	h.action[id] = a
	return a
}

func (h *nativeHost) requestBody(id uint32, b []byte, eos bool) types.Action {
	a := h.emu.CallOnRequestBody(id, b, eos)
	h.action[id] = a
	return a
}

func (h *nativeHost) done(id uint32) { h.emu.CompleteHttpContext(id) }

func (h *nativeHost) outcome(id uint32) outcome {
	if r := h.emu.GetSentLocalResponse(id); r != nil {
		o := outcome{status: int(r.StatusCode), body: string(r.Data)}
		for _, kv := range r.Headers {
			if kv[0] == "content-type" {
				o.ctype = kv[1]
			}
		}
		return o
	}
	return outcome{passed: h.emu.GetCurrentHttpStreamAction(id) == types.ActionContinue}
}

func (h *nativeHost) contexts() []uint32 {
	return append([]uint32{proxytest.PluginContextID}, h.streams...)
}

func (h *nativeHost) callouts() []callout {
	var out []callout
	for _, ctx := range h.contexts() {
		for i, a := range h.emu.GetCalloutAttributesFromContext(ctx) {
			if h.consumed[[2]int{int(ctx), i}] {
				continue
			}
			c := callout{key: int(a.CalloutID), contextID: ctx, headers: a.Headers, body: a.Body}
			c.method, c.path, c.authority = c.header(":method"), c.header(":path"), c.header(":authority")
			out = append(out, c)
		}
	}
	return out
}

func (h *nativeHost) markConsumed(c callout) {
	for i, a := range h.emu.GetCalloutAttributesFromContext(c.contextID) {
		if int(a.CalloutID) == c.key && !h.consumed[[2]int{int(c.contextID), i}] {
			h.consumed[[2]int{int(c.contextID), i}] = true
			return
		}
	}
}

func (h *nativeHost) respond(c callout, status int, hs [][2]string, body []byte) {
	h.markConsumed(c)
	hs = append([][2]string{{":status", itoa(status)}}, hs...)
	h.emu.CallOnHttpCallResponse(uint32(c.key), hs, nil, body)
}

func (h *nativeHost) fail(c callout) {
	h.markConsumed(c)
	h.emu.CallOnHttpCallResponse(uint32(c.key), nil, nil, nil)
}

func (h *nativeHost) tick() { h.emu.Tick() }

// counter reads a metric after a tick: the filter reports its check
// counters on ticks.
func (h *nativeHost) counter(name string) int64 {
	h.tick()
	if v, err := h.emu.GetCounterMetric(name); err == nil {
		return int64(v)
	}
	if v, err := h.emu.GetGaugeMetric(name); err == nil {
		return int64(v)
	}
	return -1
}

func (h *nativeHost) logs(level int) []string {
	switch level {
	case proxyhost.LogInfo:
		return h.emu.GetInfoLogs()
	case proxyhost.LogWarn:
		return h.emu.GetWarnLogs()
	case proxyhost.LogError:
		return h.emu.GetErrorLogs()
	case proxyhost.LogCritical:
		return h.emu.GetCriticalLogs()
	}
	return nil
}

func (h *nativeHost) clearLogs() {} // proxytest keeps every line; tests look for new ones by content

// ---- wasm: proxyhost -----------------------------------------------------

type wasmHost struct {
	rt *proxyhost.Runtime
	vm *proxyhost.VM
	st map[uint32]*proxyhost.Stream
	// action is the last action a callback returned per stream.
	action map[uint32]proxyhost.Action
}

var (
	wasmOnce sync.Once
	wasmPath string
	wasmErr  error
	wasmDir  string
)

func filterWasm(t testing.TB) []byte {
	wasmOnce.Do(func() {
		wasmDir, wasmErr = os.MkdirTemp("", "tim-filter-test")
		if wasmErr == nil {
			wasmPath, wasmErr = proxyhost.BuildModule("TIM_FILTER_WASM", "./wasm/cmd/tim-filter", wasmDir)
		}
	})
	if wasmErr != nil {
		t.Fatalf("compiled filter: %v", wasmErr)
	}
	b, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newWasmRuntime(t testing.TB, clk *clock) *proxyhost.Runtime {
	rt, err := proxyhost.NewRuntime(context.Background(), filterWasm(t), proxyhost.Options{Clock: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func newWasmHost(t testing.TB, rt *proxyhost.Runtime) *wasmHost {
	vm, err := rt.NewVM(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &wasmHost{rt: rt, vm: vm, st: map[uint32]*proxyhost.Stream{}, action: map[uint32]proxyhost.Action{}}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (h *wasmHost) startPlugin(config []byte) bool { return must(h.vm.StartPlugin(config)) }

func (h *wasmHost) newStream() uint32 {
	s := must(h.vm.NewStream())
	h.st[s.ID] = s
	return s.ID
}

func (h *wasmHost) requestHeaders(id uint32, hs [][2]string, eos bool) types.Action {
	a := must(h.vm.RequestHeaders(h.st[id], hs, eos))
	h.action[id] = a
	return types.Action(a)
}

func (h *wasmHost) requestBody(id uint32, b []byte, eos bool) types.Action {
	a := must(h.vm.RequestBody(h.st[id], b, eos))
	h.action[id] = a
	return types.Action(a)
}

func (h *wasmHost) done(id uint32) {
	if err := h.vm.Done(h.st[id]); err != nil {
		panic(err)
	}
}

func (h *wasmHost) outcome(id uint32) outcome {
	s := h.st[id]
	if s.Local != nil {
		o := outcome{status: s.Local.Status, body: string(s.Local.Body)}
		for _, kv := range s.Local.Headers {
			if kv[0] == "content-type" {
				o.ctype = kv[1]
			}
		}
		return o
	}
	return outcome{passed: h.action[id] == proxyhost.ActionContinue || s.Resumed}
}

func (h *wasmHost) callouts() []callout {
	var out []callout
	for _, c := range h.vm.PendingCallouts() {
		cc := callout{key: int(c.ID), contextID: c.ContextID, headers: c.Headers, body: c.Body}
		cc.method, cc.path, cc.authority = c.Header(":method"), c.Header(":path"), c.Header(":authority")
		out = append(out, cc)
	}
	return out
}

func (h *wasmHost) respond(c callout, status int, hs [][2]string, body []byte) {
	hs = append([][2]string{{":status", itoa(status)}}, hs...)
	if err := h.vm.RespondCallout(uint32(c.key), hs, body); err != nil {
		panic(err)
	}
}

func (h *wasmHost) fail(c callout) {
	if err := h.vm.RespondCallout(uint32(c.key), nil, nil); err != nil {
		panic(err)
	}
}

func (h *wasmHost) tick() {
	if err := h.vm.Tick(); err != nil {
		panic(err)
	}
}

func (h *wasmHost) counter(name string) int64 {
	h.tick()
	v, ok := h.rt.Counter(name)
	if !ok {
		return -1
	}
	return v
}

func (h *wasmHost) logs(level int) []string { return h.vm.Logs(level) }
func (h *wasmHost) clearLogs()              { h.vm.ClearLogs() }

// ---- helpers ---------------------------------------------------------------

func itoa(n int) string { return strconv.Itoa(n) }
