// Package proxyhost is a lean proxy-wasm host on wazero. It loads a compiled
// proxy-wasm module (standard Go, wasip1, ABI 0.2.0), runs HTTP streams
// through it and performs its HTTP callouts, ticks, shared data and metrics.
//
// It serves the dual-run tests of the filter, the benchmarks, and the local
// reverse proxy of `make run` (see Server). It implements the env.proxy_* calls
// the proxy-wasm Go SDK imports, with the semantics Envoy gives them.
package proxyhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Log levels as the ABI numbers them.
const (
	LogTrace = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

// Options configure a Runtime.
type Options struct {
	// Clock is the wall clock the guest sees (WASI clock_time_get realtime).
	// Nil means the real clock. Tests use it to move time forward.
	Clock func() time.Time
	// Stdout receives the guest's stdout and stderr; nil discards them.
	Stdout io.Writer
	// Log receives every proxy_log line; nil keeps them only in the VM.
	Log func(level int, msg string)
	// CacheDir holds wazero's compilation cache; "" uses a directory under
	// the system temp dir, "-" disables the disk cache.
	CacheDir string
	// AllowOnHeadersStopIteration is Envoy's PluginConfig field of that
	// name (Envoy >= 1.35); false, its default, makes a headers callback's
	// StopIteration a StopAllIterationAndWatermark (see convertHeadersStatus).
	AllowOnHeadersStopIteration bool
	// BufferLimit is Envoy's per-stream buffer limit (the listener's
	// per_connection_buffer_limit_bytes, default 1 MiB): a body buffered for
	// the filter beyond it is answered with Envoy's own 413.
	BufferLimit int
}

// DefaultBufferLimit is Envoy's default per_connection_buffer_limit_bytes.
const DefaultBufferLimit = 1 << 20

// Runtime is a compiled module plus what all its VMs share: shared data and
// metrics (in Envoy both are per host, not per VM).
type Runtime struct {
	opts     Options
	r        wazero.Runtime
	compiled wazero.CompiledModule
	vmSeq    atomic.Uint32

	sharedMu sync.Mutex
	shared   map[string]*sharedEntry
	casSeq   uint32

	metricMu    sync.Mutex
	metricIDs   map[string]uint32
	metricNames []string
	metricVals  []int64
	metricTypes []uint32
}

type sharedEntry struct {
	data []byte
	cas  uint32
}

var (
	cacheOnce sync.Once
	cache     wazero.CompilationCache
)

func compilationCache(dir string) wazero.CompilationCache {
	if dir == "-" {
		return nil
	}
	if dir != "" {
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err == nil {
			return c
		}
	}
	cacheOnce.Do(func() {
		c, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "tim-proxyhost-wazero"))
		if err != nil {
			c = wazero.NewCompilationCache()
		}
		cache = c
	})
	return cache
}

// NewRuntime compiles a proxy-wasm module.
func NewRuntime(ctx context.Context, wasm []byte, opts Options) (*Runtime, error) {
	cfg := wazero.NewRuntimeConfig()
	if c := compilationCache(opts.CacheDir); c != nil {
		cfg = cfg.WithCompilationCache(c)
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	// The listener sees the guest's calls into WASI functions that cpp-host
	// does not allow during malloc (the allowed ones get none: no cost).
	if _, err := wasi_snapshot_preview1.Instantiate(experimental.WithFunctionListenerFactory(ctx, mallocGuard{}), r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	rt := &Runtime{opts: opts, r: r, shared: map[string]*sharedEntry{}, metricIDs: map[string]uint32{}}
	if err := rt.exportABI(ctx); err != nil {
		r.Close(ctx)
		return nil, err
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("compile module: %w", err)
	}
	rt.compiled = compiled
	return rt, nil
}

// Close releases the runtime and every VM created from it.
func (rt *Runtime) Close(ctx context.Context) error { return rt.r.Close(ctx) }

// Counter returns the value of a metric by name (0, false when undefined).
func (rt *Runtime) Counter(name string) (int64, bool) {
	rt.metricMu.Lock()
	defer rt.metricMu.Unlock()
	id, ok := rt.metricIDs[name]
	if !ok {
		return 0, false
	}
	return rt.metricVals[id], true
}

// Metrics returns a copy of every metric by name.
func (rt *Runtime) Metrics() map[string]int64 {
	rt.metricMu.Lock()
	defer rt.metricMu.Unlock()
	out := make(map[string]int64, len(rt.metricNames))
	for i, n := range rt.metricNames {
		out[n] = rt.metricVals[i]
	}
	return out
}

// SharedData returns the shared value under key (nil, false when absent).
func (rt *Runtime) SharedData(key string) ([]byte, bool) {
	rt.sharedMu.Lock()
	defer rt.sharedMu.Unlock()
	e, ok := rt.shared[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), e.data...), true
}

// Callout is an HTTP call the guest dispatched (proxy_http_call).
type Callout struct {
	ID        uint32
	ContextID uint32 // the context that dispatched it (plugin or stream)
	Cluster   string
	Headers   [][2]string // includes :method, :path, :authority
	Body      []byte
	Timeout   time.Duration
}

// Header returns the first value of a callout request header.
func (c *Callout) Header(name string) string { return lookup(c.Headers, name) }

// LocalResponse is what the guest sent with proxy_send_local_response.
type LocalResponse struct {
	Status  int
	Detail  string
	Body    []byte
	Headers [][2]string
	// ByHost is set when Envoy itself answered (e.g. its 413 for a body
	// over the buffer limit), not the guest.
	ByHost bool
}

// VM is one instance of the module with its plugin context; like an Envoy
// worker thread's VM it is single-threaded: callers serialise access.
type VM struct {
	rt  *Runtime
	mod api.Module
	ctx context.Context

	fnContextCreate, fnVMStart, fnConfigure, fnDone, fnTick   api.Function
	fnReqHeaders, fnReqBody, fnRespHeaders, fnRespBody, fnLog api.Function
	fnDelete, fnCallResponse, fnMalloc                        api.Function
	stack                                                     [8]uint64
	scratch                                                   []byte // header maps on their way into the guest

	pluginID     uint32
	nextID       uint32
	pluginConfig []byte
	vmConfig     []byte
	streams      map[uint32]*Stream
	cur          *Stream
	properties   map[string][]byte

	tickPeriod  time.Duration
	nextCallout uint32
	callouts    map[uint32]*Callout
	callResp    *calloutResponse
	// OnCallout, when set, is told of every dispatched callout; pending
	// callouts are also listed by PendingCallouts.
	OnCallout func(*Callout)

	logMu sync.Mutex
	logs  [6][]string

	// depth counts nested guest calls; after holds what the guest asked for
	// during them (local replies, resumes), run when the outermost call
	// returns, as proxy-wasm-cpp-host's DeferAfterCallActions does.
	depth int
	after []func() error
	// stopNext is cpp-host's stopNextIteration: set by a local reply, it
	// turns the callback's status into a stop.
	stopNext bool
	// inMalloc is set while the host calls the guest's allocator
	// (cpp-host WasmBase::allocMemory restricts host calls then).
	inMalloc bool
}

type calloutResponse struct {
	headers [][2]string
	body    []byte
}

type vmKey struct{}

// NewVM instantiates the module and starts the VM (proxy_on_vm_start) and its
// root context; StartPlugin then configures it.
func (rt *Runtime) NewVM(ctx context.Context) (*VM, error) {
	vm := &VM{rt: rt, pluginID: 1, nextID: 2, streams: map[uint32]*Stream{}, callouts: map[uint32]*Callout{}, properties: map[string][]byte{}}
	vm.ctx = context.WithValue(ctx, vmKey{}, vm)
	n := rt.vmSeq.Add(1)
	mc := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("vm-%d", n)).
		WithStartFunctions("_initialize").
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	if rt.opts.Clock != nil {
		clock := rt.opts.Clock
		mc = mc.WithWalltime(func() (int64, int32) {
			t := clock()
			return t.Unix(), int32(t.Nanosecond())
		}, 1)
	} else {
		mc = mc.WithSysWalltime()
	}
	if rt.opts.Stdout != nil {
		mc = mc.WithStdout(rt.opts.Stdout).WithStderr(rt.opts.Stdout)
	}
	mod, err := rt.r.InstantiateModule(vm.ctx, rt.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	vm.mod = mod
	fn := func(name string) api.Function { return mod.ExportedFunction(name) }
	vm.fnContextCreate = fn("proxy_on_context_create")
	vm.fnVMStart = fn("proxy_on_vm_start")
	vm.fnConfigure = fn("proxy_on_configure")
	vm.fnDone = fn("proxy_on_done")
	vm.fnTick = fn("proxy_on_tick")
	vm.fnReqHeaders = fn("proxy_on_request_headers")
	vm.fnReqBody = fn("proxy_on_request_body")
	vm.fnRespHeaders = fn("proxy_on_response_headers")
	vm.fnRespBody = fn("proxy_on_response_body")
	vm.fnLog = fn("proxy_on_log")
	vm.fnDelete = fn("proxy_on_delete")
	vm.fnCallResponse = fn("proxy_on_http_call_response")
	// As Envoy (proxy-wasm-cpp-host): malloc when the module exports it,
	// else proxy_on_memory_allocate.
	if vm.fnMalloc = fn("malloc"); vm.fnMalloc == nil {
		vm.fnMalloc = fn("proxy_on_memory_allocate")
	}
	for name, f := range map[string]api.Function{"proxy_on_context_create": vm.fnContextCreate, "proxy_on_vm_start": vm.fnVMStart,
		"proxy_on_configure": vm.fnConfigure, "proxy_on_request_headers": vm.fnReqHeaders, "malloc or proxy_on_memory_allocate": vm.fnMalloc} {
		if f == nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("module does not export %s", name)
		}
	}
	if _, err := vm.call(vm.fnContextCreate, uint64(vm.pluginID), 0); err != nil {
		return nil, err
	}
	ok, err := vm.call(vm.fnVMStart, uint64(vm.pluginID), uint64(len(vm.vmConfig)))
	if err != nil {
		return nil, err
	}
	if ok == 0 {
		return nil, errors.New("proxy_on_vm_start returned false")
	}
	return vm, nil
}

// Close closes the module instance.
func (vm *VM) Close() error { return vm.mod.Close(vm.ctx) }

// Runtime returns the runtime the VM belongs to.
func (vm *VM) Runtime() *Runtime { return vm.rt }

// StartPlugin runs proxy_on_configure with the plugin configuration and
// reports what the plugin returned.
func (vm *VM) StartPlugin(config []byte) (bool, error) {
	vm.pluginConfig = config
	vm.cur = nil
	r, err := vm.call(vm.fnConfigure, uint64(vm.pluginID), uint64(len(config)))
	return r != 0, err
}

// SetProperty sets a property the guest can read (path segments).
func (vm *VM) SetProperty(path []string, value []byte) {
	vm.properties[propertyKey(path)] = value
}

// NewStream creates an HTTP context in the guest.
func (vm *VM) NewStream() (*Stream, error) {
	s := &Stream{ID: vm.nextID}
	vm.nextID++
	vm.streams[s.ID] = s
	if _, err := vm.call(vm.fnContextCreate, uint64(s.ID), uint64(vm.pluginID)); err != nil {
		return nil, err
	}
	return s, nil
}

// Done ends the stream (proxy_on_log, proxy_on_delete).
func (vm *VM) Done(s *Stream) error {
	vm.enter(s)
	if _, err := vm.call(vm.fnLog, uint64(s.ID)); err != nil {
		return err
	}
	_, err := vm.call(vm.fnDelete, uint64(s.ID))
	delete(vm.streams, s.ID)
	vm.cur = nil
	return err
}

// Tick runs proxy_on_tick.
func (vm *VM) Tick() error {
	vm.cur = nil
	_, err := vm.call(vm.fnTick, uint64(vm.pluginID))
	return err
}

// TickPeriod is what the guest asked for with proxy_set_tick_period_milliseconds.
func (vm *VM) TickPeriod() time.Duration { return vm.tickPeriod }

// PendingCallouts lists the callouts not yet answered, oldest first.
func (vm *VM) PendingCallouts() []*Callout {
	out := make([]*Callout, 0, len(vm.callouts))
	for _, c := range vm.callouts {
		out = append(out, c)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// RespondCallout delivers the response of a callout (headers should include
// ":status"). A nil headers slice reports a failed call, as Envoy does on a
// reset or timeout: the guest sees no headers and no body.
func (vm *VM) RespondCallout(id uint32, headers [][2]string, body []byte) error {
	if _, ok := vm.callouts[id]; !ok {
		return fmt.Errorf("no pending callout %d", id)
	}
	delete(vm.callouts, id)
	vm.callResp = &calloutResponse{headers: lowerKeys(headers), body: body}
	defer func() { vm.callResp = nil }()
	vm.cur = nil
	_, err := vm.call(vm.fnCallResponse, uint64(vm.pluginID), uint64(id), uint64(len(headers)), uint64(len(body)), 0)
	return err
}

// Logs returns the log lines of a level collected so far.
func (vm *VM) Logs(level int) []string {
	vm.logMu.Lock()
	defer vm.logMu.Unlock()
	return append([]string(nil), vm.logs[level]...)
}

// ClearLogs forgets collected log lines.
func (vm *VM) ClearLogs() {
	vm.logMu.Lock()
	defer vm.logMu.Unlock()
	for i := range vm.logs {
		vm.logs[i] = nil
	}
}

// MemorySize is the guest's linear memory size in bytes.
func (vm *VM) MemorySize() uint32 { return vm.mod.Memory().Size() }

// MemoryContains reports whether the guest's linear memory holds b
// anywhere, for tests of what a module keeps of a request.
func (vm *VM) MemoryContains(b []byte) bool {
	m, _ := vm.mod.Memory().Read(0, vm.mod.Memory().Size())
	return bytes.Contains(m, b)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func lowerKeys(h [][2]string) [][2]string {
	out := make([][2]string, len(h))
	for i, kv := range h {
		out[i] = [2]string{toLower(kv[0]), kv[1]}
	}
	return out
}

func toLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func lookup(h [][2]string, name string) string {
	name = toLower(name)
	for _, kv := range h {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

func propertyKey(path []string) string {
	n := 0
	for _, p := range path {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for i, p := range path {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return string(b)
}

// Canary starts the plugin once in a fresh VM and discards it, as
// proxy-wasm-cpp-host does on the main thread before any worker's VM
// serves the plugin (src/wasm.cc, WasmHandleBase::canary): a plugin's
// start runs once more than there are workers, the canary's callouts are
// never answered and its timers never fire, but what it writes to shared
// data stays. It reports whether the plugin accepted its configuration,
// with the critical log lines when not.
func (rt *Runtime) Canary(ctx context.Context, config []byte) (bool, []string, error) {
	vm, err := rt.NewVM(ctx)
	if err != nil {
		return false, nil, err
	}
	defer vm.Close()
	ok, err := vm.StartPlugin(config)
	return ok, vm.Logs(LogCritical), err
}
