package proxyhost

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// This file models what Envoy's HTTP filter chain does with the statuses a
// proxy-wasm filter returns, so that a filter relying on behaviour Envoy
// lacks fails here. Sources (Envoy >= 1.35 with its proxy-wasm-cpp-host):
//   - proxy-wasm-cpp-host src/context.cc: ContextBase::onRequestHeaders,
//     onRequestBody, convertVmCallResultToFilterHeadersStatus and
//     convertVmCallResultToFilterDataStatus;
//   - proxy-wasm-cpp-host src/exports.cc: send_local_response (stopNextIteration),
//     continue_stream; include/proxy-wasm/wasm.h: DeferAfterCallActions;
//   - Envoy source/extensions/common/wasm/context.cc: Context::decodeHeaders,
//     decodeData (buffering_request_body_, addDecodedData), sendLocalResponse
//     and continueStream (both deferred with addAfterVmCallAction);
//   - Envoy source/common/http/filter_manager.cc: StopAllIteration keeps the
//     body from the filter until continueDecoding, then hands it the held data
//     (iterate_from_current_filter_); a buffer over the limit under
//     StopIterationAndBuffer is answered with 413; a local reply aborts the
//     decoder chain and the router resets its upstream request.

// Action is the value a stream callback returns, as the SDK names it.
type Action uint32

const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

// HeadersStatus is Envoy's Http::FilterHeadersStatus.
type HeadersStatus uint32

const (
	HeadersContinue                     HeadersStatus = 0
	HeadersStopIteration                HeadersStatus = 1
	HeadersContinueAndDontEndStream     HeadersStatus = 2
	HeadersStopAllIterationAndBuffer    HeadersStatus = 3
	HeadersStopAllIterationAndWatermark HeadersStatus = 4
)

// DataStatus is Envoy's Http::FilterDataStatus.
type DataStatus uint32

const (
	DataContinue                  DataStatus = 0
	DataStopIterationAndBuffer    DataStatus = 1
	DataStopIterationAndWatermark DataStatus = 2
	DataStopIterationNoBuffer     DataStatus = 3
)

// Stream is one HTTP stream (an HTTP context in the guest).
type Stream struct {
	ID          uint32
	ReqHeaders  [][2]string
	ReqBody     []byte // what the guest's get_buffer_bytes sees in the body callback
	RespHeaders [][2]string
	RespBody    []byte
	// Local is set when the stream was answered locally, by the guest or
	// by Envoy itself (Local.ByHost).
	Local *LocalResponse
	// Resumed is set when the guest resumed a stopped request.
	Resumed bool
	// Headers and Data are the statuses Envoy made of the last headers and
	// body callbacks (after cpp-host's conversion).
	Headers HeadersStatus
	Data    DataStatus
	// BodyCalls counts the body callbacks the guest received.
	BodyCalls int
	// Upstream is what the filter let through towards the router.
	Upstream Upstream

	stopped   bool   // iteration stopped at this filter
	stopAll   bool   // stopped by a headers StopAll: body callbacks withheld
	held      []byte // body withheld while stopAll
	hasHeld   bool
	buffering bool   // the guest returned StopIterationAndBuffer
	buffered  []byte // body buffered for the guest
	headerEnd bool   // end of stream came with the headers
	dataEnd   bool   // end of stream came with the body
	aborted   bool   // a local reply ended the decoder chain

	wake chan struct{}
}

// Upstream is what the router has been given of a request: the headers,
// body bytes, whether the request ended, and whether a local reply reset
// the upstream request after its headers had gone out.
type Upstream struct {
	Headers bool
	Body    []byte
	End     bool
	Reset   bool
}

func (s *Stream) signal() {
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// convertHeadersStatus follows proxy-wasm-cpp-host src/context.cc,
// convertVmCallResultToFilterHeadersStatus: after a local reply
// (stopNextIteration) or for a value beyond the enum it is
// StopAllIterationAndWatermark, and so is StopIteration unless the plugin
// config allows headers stop-iteration (cpp-host issue 143).
func (vm *VM) convertHeadersStatus(r uint64) HeadersStatus {
	switch {
	case vm.stopNext || r > uint64(HeadersStopAllIterationAndWatermark):
		return HeadersStopAllIterationAndWatermark
	case r == uint64(HeadersStopIteration) && !vm.rt.opts.AllowOnHeadersStopIteration:
		return HeadersStopAllIterationAndWatermark
	}
	return HeadersStatus(r)
}

// convertDataStatus follows convertVmCallResultToFilterDataStatus: after a
// local reply or beyond the enum it is StopIterationNoBuffer.
func (vm *VM) convertDataStatus(r uint64) DataStatus {
	if vm.stopNext || r > uint64(DataStopIterationNoBuffer) {
		return DataStopIterationNoBuffer
	}
	return DataStatus(r)
}

// call runs a guest function; when the outermost call returns, the actions
// the guest deferred run (cpp-host DeferAfterCallActions).
func (vm *VM) call(f api.Function, args ...uint64) (uint64, error) {
	r, err := vm.callNoAfter(f, args...)
	if err != nil {
		return r, err
	}
	return r, vm.runAfter()
}

func (vm *VM) callNoAfter(f api.Function, args ...uint64) (uint64, error) {
	if f == nil {
		return 0, nil
	}
	vm.depth++
	st := vm.stack[:]
	copy(st, args)
	err := f.CallWithStack(vm.ctx, st)
	vm.depth--
	if err != nil {
		return 0, err
	}
	return st[0], nil
}

func (vm *VM) runAfter() error {
	if vm.depth > 0 {
		return nil
	}
	vm.stopNext = false
	for len(vm.after) > 0 {
		a := vm.after[0]
		vm.after = vm.after[1:]
		if err := a(); err != nil {
			vm.after = nil
			return err
		}
	}
	return nil
}

func (vm *VM) enter(s *Stream) { vm.cur = s }

// RequestHeaders delivers the request headers (lower-case names, pseudo
// headers included). It returns ActionContinue when Envoy would pass the
// headers on, ActionPause when it stops; s.Headers says how.
func (vm *VM) RequestHeaders(s *Stream, headers [][2]string, endOfStream bool) (Action, error) {
	s.ReqHeaders = lowerKeys(headers)
	s.headerEnd = endOfStream
	vm.enter(s)
	r, err := vm.callNoAfter(vm.fnReqHeaders, uint64(s.ID), uint64(len(headers)), b2u(endOfStream))
	if err != nil {
		return ActionPause, err
	}
	s.Headers = vm.convertHeadersStatus(r)
	switch s.Headers {
	case HeadersContinue, HeadersContinueAndDontEndStream:
		if !s.aborted {
			s.Upstream.Headers = true
			s.Upstream.End = endOfStream
		}
	case HeadersStopIteration:
		s.stopped = true
	default:
		s.stopped, s.stopAll = true, true
	}
	if err := vm.runAfter(); err != nil {
		return ActionPause, err
	}
	return s.action(), nil
}

// action is what a caller of the SDK's kind sees: continue once nothing
// stops the request at this filter.
func (s *Stream) action() Action {
	if s.stopped || s.aborted {
		return ActionPause
	}
	return ActionContinue
}

// RequestBody delivers a chunk of the request body as Envoy does: not at
// all while a headers StopAll holds the stream (the chunk waits for the
// resume) or after a local reply; with the data buffered so far while the
// guest buffers (StopIterationAndBuffer), within the buffer limit.
func (vm *VM) RequestBody(s *Stream, chunk []byte, endOfStream bool) (Action, error) {
	if s.aborted {
		return ActionPause, nil
	}
	s.dataEnd = endOfStream
	if s.stopAll {
		s.held = append(s.held, chunk...)
		s.hasHeld = true
		return ActionPause, nil
	}
	err := vm.deliverBody(s, chunk, endOfStream)
	return s.action(), err
}

func (vm *VM) deliverBody(s *Stream, chunk []byte, endOfStream bool) error {
	data := chunk
	if s.buffering {
		s.buffered = append(s.buffered, chunk...)
		data = s.buffered
		if vm.overLimit(s) {
			return nil
		}
	}
	s.ReqBody = data
	s.BodyCalls++
	vm.enter(s)
	r, err := vm.callNoAfter(vm.fnReqBody, uint64(s.ID), uint64(len(data)), b2u(endOfStream))
	if err != nil {
		return err
	}
	s.Data = vm.convertDataStatus(r)
	switch s.Data {
	case DataContinue:
		// Headers held by a headers StopIteration go first, then all
		// buffered data (FilterDataStatus::Continue).
		if !s.aborted {
			s.Upstream.Headers = true
			s.Upstream.Body = append(s.Upstream.Body, data...)
			s.Upstream.End = endOfStream
		}
		s.stopped, s.buffering, s.buffered = false, false, nil
	case DataStopIterationAndBuffer, DataStopIterationAndWatermark:
		if !s.buffering {
			s.buffered = append([]byte(nil), chunk...)
		}
		s.buffering, s.stopped = true, true
		if s.Data == DataStopIterationAndBuffer && vm.overLimit(s) {
			return vm.runAfter()
		}
	default: // StopIterationNoBuffer: the chunk is dropped
		s.stopped = true
	}
	return vm.runAfter()
}

// overLimit answers with Envoy's own 413 when the body buffered for the
// guest exceeds the buffer limit (filter_manager.cc, buffer limit exceeded
// while StopIterationAndBuffer: "Payload Too Large"); the guest's body
// callback is not called for it.
func (vm *VM) overLimit(s *Stream) bool {
	limit := vm.rt.opts.BufferLimit
	if limit <= 0 {
		limit = DefaultBufferLimit
	}
	if len(s.buffered) <= limit {
		return false
	}
	vm.localReply(s, &LocalResponse{Status: 413, Body: []byte("Payload Too Large"), Headers: [][2]string{{"content-type", "text/plain"}}, ByHost: true})
	return true
}

// localReply ends the stream with a local response: the decoder chain
// stops, and an upstream request whose headers went out is reset (the
// router's onDestroy when the downstream stream completes).
func (vm *VM) localReply(s *Stream, l *LocalResponse) {
	if s.aborted {
		return
	}
	s.Local = l
	s.aborted, s.stopped = true, true
	s.held, s.buffered = nil, nil
	if s.Upstream.Headers {
		s.Upstream.Reset = true
	}
	s.signal()
}

// resume is Envoy's continueDecoding for the stream (after the VM call
// that asked for it). A stream stopped by a headers StopAll gets the body
// held meanwhile in one body callback; one stopped in the body callback
// passes its buffered body on.
func (vm *VM) resume(s *Stream) error {
	if s.aborted || !s.stopped {
		return nil
	}
	s.stopped, s.Resumed = false, true
	s.signal()
	if !s.Upstream.Headers {
		s.Upstream.Headers = true
		s.Upstream.End = s.headerEnd
	}
	if s.stopAll {
		s.stopAll = false
		if s.hasHeld {
			held := s.held
			s.held, s.hasHeld = nil, false
			return vm.deliverBody(s, held, s.dataEnd)
		}
		return nil
	}
	s.Upstream.Body = append(s.Upstream.Body, s.buffered...)
	s.Upstream.End = s.Upstream.End || s.dataEnd
	s.buffering, s.buffered = false, nil
	s.signal()
	return nil
}

// ResponseHeaders delivers the upstream's response headers.
func (vm *VM) ResponseHeaders(s *Stream, headers [][2]string, endOfStream bool) (Action, error) {
	s.RespHeaders = lowerKeys(headers)
	vm.enter(s)
	r, err := vm.call(vm.fnRespHeaders, uint64(s.ID), uint64(len(headers)), b2u(endOfStream))
	if err != nil {
		return ActionPause, err
	}
	if vm.convertHeadersStatus(r) != HeadersContinue {
		return ActionPause, nil
	}
	return ActionContinue, nil
}

// ResponseBody delivers (a chunk of) the upstream's response body.
func (vm *VM) ResponseBody(s *Stream, body []byte, endOfStream bool) (Action, error) {
	s.RespBody = body
	vm.enter(s)
	r, err := vm.call(vm.fnRespBody, uint64(s.ID), uint64(len(body)), b2u(endOfStream))
	if err != nil {
		return ActionPause, err
	}
	if vm.convertDataStatus(r) != DataContinue {
		return ActionPause, nil
	}
	return ActionContinue, nil
}

// restricted is what a host call made while the host runs the guest's
// allocator does (cpp-host WasmBase::allocMemory, V8's "restricted_callback"
// trap): only logging, stdout/stderr, the clock and poll_oneoff are allowed.
func restricted(name string) {
	panic(fmt.Sprintf("proxyhost: restricted_callback: %s called during malloc", name))
}

// mallocAllowed is the set cpp-host allows during malloc.
var mallocAllowed = map[string]bool{
	"env.proxy_log": true, "wasi_snapshot_preview1.fd_write": true,
	"wasi_snapshot_preview1.clock_time_get": true, "wasi_snapshot_preview1.poll_oneoff": true,
}

// mallocGuard traps a guest's call into a WASI function outside
// mallocAllowed made while the host runs the guest's allocator.
type mallocGuard struct{}

func (mallocGuard) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	mod, name := def.ModuleName(), def.Name()
	if mod != "wasi_snapshot_preview1" || mallocAllowed[mod+"."+name] {
		return nil
	}
	full := mod + "." + name
	return experimental.FunctionListenerFunc(func(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
		if vm, ok := ctx.Value(vmKey{}).(*VM); ok && vm.inMalloc {
			restricted(full)
		}
	})
}
