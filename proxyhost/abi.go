package proxyhost

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// ABI status codes (proxy-wasm 0.2.x).
const (
	statusOK            = 0
	statusNotFound      = 1
	statusBadArgument   = 2
	statusEmpty         = 7
	statusCasMismatch   = 8
	statusUnimplemented = 12
)

// Map and buffer types of the ABI.
const (
	mapRequestHeaders       = 0
	mapRequestTrailers      = 1
	mapResponseHeaders      = 2
	mapResponseTrailers     = 3
	mapCallResponseHeaders  = 6
	mapCallResponseTrailers = 7

	bufRequestBody      = 0
	bufResponseBody     = 1
	bufCallResponseBody = 4
	bufVMConfig         = 6
	bufPluginConfig     = 7
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func vmOf(ctx context.Context) *VM { return ctx.Value(vmKey{}).(*VM) }

// read returns a view of guest memory (valid until the guest runs again).
func read(mod api.Module, ptr, size uint64) []byte {
	if size == 0 {
		return nil
	}
	b, ok := mod.Memory().Read(uint32(ptr), uint32(size))
	if !ok {
		panic("proxyhost: guest pointer out of range")
	}
	return b
}

// give copies data into a buffer allocated by the guest and stores its
// address and size at ptrPtr and sizePtr.
func (vm *VM) give(mod api.Module, data []byte, ptrPtr, sizePtr uint64) {
	mem := mod.Memory()
	if len(data) == 0 {
		mem.WriteUint32Le(uint32(ptrPtr), 0)
		mem.WriteUint32Le(uint32(sizePtr), 0)
		return
	}
	addr := vm.malloc(len(data))
	if !mem.Write(addr, data) {
		panic("proxyhost: guest allocation out of range")
	}
	mem.WriteUint32Le(uint32(ptrPtr), addr)
	mem.WriteUint32Le(uint32(sizePtr), uint32(len(data)))
}

// malloc calls the guest's allocator with host calls restricted, as
// cpp-host's WasmBase::allocMemory does.
func (vm *VM) malloc(n int) uint32 {
	var st [1]uint64
	st[0] = uint64(n)
	vm.inMalloc = true
	err := vm.fnMalloc.CallWithStack(vm.ctx, st[:])
	vm.inMalloc = false
	if err != nil {
		panic(err)
	}
	return uint32(st[0])
}

// giveString is give for a string value, without a host-side copy.
func (vm *VM) giveString(mod api.Module, s string, ptrPtr, sizePtr uint64) {
	mem := mod.Memory()
	if len(s) == 0 {
		mem.WriteUint32Le(uint32(ptrPtr), 0)
		mem.WriteUint32Le(uint32(sizePtr), 0)
		return
	}
	addr := vm.malloc(len(s))
	if !mem.WriteString(addr, s) {
		panic("proxyhost: guest allocation out of range")
	}
	mem.WriteUint32Le(uint32(ptrPtr), addr)
	mem.WriteUint32Le(uint32(sizePtr), uint32(len(s)))
}

// serializeMap encodes a header map in the ABI's layout into buf (reused
// between calls: give copies it into the guest at once).
func serializeMap(buf []byte, h [][2]string) []byte {
	size := 4
	for _, kv := range h {
		size += 8 + len(kv[0]) + len(kv[1]) + 2
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	b := buf[:size]
	clear(b)
	binary.LittleEndian.PutUint32(b, uint32(len(h)))
	p := 4
	for _, kv := range h {
		binary.LittleEndian.PutUint32(b[p:], uint32(len(kv[0])))
		binary.LittleEndian.PutUint32(b[p+4:], uint32(len(kv[1])))
		p += 8
	}
	for _, kv := range h {
		p += copy(b[p:], kv[0]) + 1
		p += copy(b[p:], kv[1]) + 1
	}
	return b
}

func deserializeMap(b []byte) [][2]string {
	if len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 0 || 4+8*n > len(b) {
		return nil
	}
	out := make([][2]string, n)
	sizes := 4
	data := 4 + 8*n
	for i := 0; i < n; i++ {
		ks := int(binary.LittleEndian.Uint32(b[sizes:]))
		vs := int(binary.LittleEndian.Uint32(b[sizes+4:]))
		sizes += 8
		if data+ks+vs+2 > len(b) {
			return out[:i]
		}
		k := string(b[data : data+ks])
		data += ks + 1
		v := string(b[data : data+vs])
		data += vs + 1
		out[i] = [2]string{toLower(k), v}
	}
	return out
}

// headerMap returns the map a map type names, for the effective context.
func (vm *VM) headerMap(t uint64) *[][2]string {
	switch t {
	case mapCallResponseHeaders:
		if vm.callResp != nil {
			return &vm.callResp.headers
		}
		return nil
	case mapCallResponseTrailers:
		return nil
	}
	s := vm.cur
	if s == nil {
		return nil
	}
	switch t {
	case mapRequestHeaders:
		return &s.ReqHeaders
	case mapResponseHeaders:
		return &s.RespHeaders
	}
	return nil
}

type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(ctx context.Context, mod api.Module, st []uint64) uint64
}

func params(n int) []api.ValueType {
	p := make([]api.ValueType, n)
	for i := range p {
		p[i] = i32
	}
	return p
}

func (rt *Runtime) exportABI(ctx context.Context) error {
	fns := []hostFunc{
		{"proxy_log", params(3), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			msg := string(read(mod, st[1], st[2]))
			lvl := int(st[0])
			if lvl < 0 || lvl > LogCritical {
				lvl = LogCritical
			}
			vm.logMu.Lock()
			vm.logs[lvl] = append(vm.logs[lvl], msg)
			vm.logMu.Unlock()
			if rt.opts.Log != nil {
				rt.opts.Log(lvl, msg)
			}
			return statusOK
		}},
		{"proxy_send_local_response", params(8), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			s := vm.cur
			if s == nil {
				return statusBadArgument
			}
			l := &LocalResponse{
				Status:  int(uint32(st[0])),
				Detail:  string(read(mod, st[1], st[2])),
				Body:    append([]byte(nil), read(mod, st[3], st[4])...),
				Headers: deserializeMap(read(mod, st[5], st[6])),
			}
			// Envoy context.cc sendLocalResponse: sent after the VM call;
			// cpp-host exports.cc: the callback's status becomes a stop.
			vm.after = append(vm.after, func() error { vm.localReply(s, l); return nil })
			vm.stopNext = true
			return statusOK
		}},
		{"proxy_get_shared_data", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			key := string(read(mod, st[0], st[1]))
			rt.sharedMu.Lock()
			e, ok := rt.shared[key]
			var data []byte
			var cas uint32
			if ok {
				data, cas = e.data, e.cas
			}
			rt.sharedMu.Unlock()
			if !ok {
				return statusNotFound
			}
			vm.give(mod, data, st[2], st[3])
			mod.Memory().WriteUint32Le(uint32(st[4]), cas)
			return statusOK
		}},
		{"proxy_set_shared_data", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			key := string(read(mod, st[0], st[1]))
			val := append([]byte(nil), read(mod, st[2], st[3])...)
			cas := uint32(st[4])
			rt.sharedMu.Lock()
			defer rt.sharedMu.Unlock()
			// Envoy's semantics: cas 0 writes unconditionally, any other
			// value must match the entry's current cas.
			if e, ok := rt.shared[key]; ok && cas != 0 && cas != e.cas {
				return statusCasMismatch
			}
			rt.casSeq++
			rt.shared[key] = &sharedEntry{data: val, cas: rt.casSeq}
			return statusOK
		}},
		{"proxy_register_shared_queue", params(3), nil, unimplemented},
		{"proxy_resolve_shared_queue", params(5), nil, unimplemented},
		{"proxy_dequeue_shared_queue", params(3), nil, func(context.Context, api.Module, []uint64) uint64 { return statusEmpty }},
		{"proxy_enqueue_shared_queue", params(3), nil, unimplemented},
		{"proxy_get_header_map_value", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			m := vm.headerMap(st[0])
			if m == nil {
				return statusNotFound
			}
			key := read(mod, st[1], st[2])
			for _, kv := range *m {
				if equalFoldASCII(kv[0], key) {
					vm.giveString(mod, kv[1], st[3], st[4])
					return statusOK
				}
			}
			return statusNotFound
		}},
		{"proxy_add_header_map_value", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			m := vmOf(ctx).headerMap(st[0])
			if m == nil {
				return statusBadArgument
			}
			*m = append(*m, [2]string{toLower(string(read(mod, st[1], st[2]))), string(read(mod, st[3], st[4]))})
			return statusOK
		}},
		{"proxy_replace_header_map_value", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			m := vmOf(ctx).headerMap(st[0])
			if m == nil {
				return statusBadArgument
			}
			key := toLower(string(read(mod, st[1], st[2])))
			val := string(read(mod, st[3], st[4]))
			*m = removeKey(*m, key)
			*m = append(*m, [2]string{key, val})
			return statusOK
		}},
		{"proxy_remove_header_map_value", params(3), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			m := vmOf(ctx).headerMap(st[0])
			if m == nil {
				return statusBadArgument
			}
			*m = removeKey(*m, toLower(string(read(mod, st[1], st[2]))))
			return statusOK
		}},
		{"proxy_get_header_map_pairs", params(3), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			m := vm.headerMap(st[0])
			var h [][2]string
			if m != nil {
				h = *m
			}
			vm.scratch = serializeMap(vm.scratch, h)
			vm.give(mod, vm.scratch, st[1], st[2])
			return statusOK
		}},
		{"proxy_set_header_map_pairs", params(3), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			m := vmOf(ctx).headerMap(st[0])
			if m == nil {
				return statusBadArgument
			}
			*m = deserializeMap(read(mod, st[1], st[2]))
			return statusOK
		}},
		{"proxy_get_buffer_bytes", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			var buf []byte
			switch st[0] {
			case bufRequestBody, bufResponseBody:
				if vm.cur == nil {
					return statusNotFound
				}
				if st[0] == bufRequestBody {
					buf = vm.cur.ReqBody
				} else {
					buf = vm.cur.RespBody
				}
			case bufCallResponseBody:
				if vm.callResp == nil {
					return statusNotFound
				}
				buf = vm.callResp.body
			case bufVMConfig:
				buf = vm.vmConfig
			case bufPluginConfig:
				buf = vm.pluginConfig
			default:
				return statusBadArgument
			}
			start, max := int(uint32(st[1])), int(uint32(st[2]))
			if len(buf) == 0 {
				return statusNotFound
			}
			if start >= len(buf) {
				return statusBadArgument
			}
			end := len(buf)
			if max < end-start {
				end = start + max
			}
			vm.give(mod, buf[start:end], st[3], st[4])
			return statusOK
		}},
		{"proxy_set_buffer_bytes", params(5), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			if vm.cur == nil {
				return statusBadArgument
			}
			var target *[]byte
			switch st[0] {
			case bufRequestBody:
				target = &vm.cur.ReqBody
			case bufResponseBody:
				target = &vm.cur.RespBody
			default:
				return statusBadArgument
			}
			data := append([]byte(nil), read(mod, st[3], st[4])...)
			start, size := int(uint32(st[1])), int(uint32(st[2]))
			switch {
			case start == 0 && size == 0:
				*target = append(data, *target...)
			case start == 0 && size >= len(*target):
				*target = data
			case start >= len(*target):
				*target = append(*target, data...)
			default:
				return statusBadArgument
			}
			return statusOK
		}},
		{"proxy_continue_stream", params(1), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			s := vm.cur
			if s == nil {
				return statusBadArgument
			}
			switch st[0] {
			case 0: // request: Envoy context.cc continueStream, after the VM call
				vm.after = append(vm.after, func() error { return vm.resume(s) })
			case 1: // response: the host stops no response
			default:
				return statusBadArgument
			}
			return statusOK
		}},
		{"proxy_close_stream", params(1), nil, func(context.Context, api.Module, []uint64) uint64 { return statusOK }},
		{"proxy_http_call", params(10), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			vm.nextCallout++
			c := &Callout{
				ID:      vm.nextCallout,
				Cluster: string(read(mod, st[0], st[1])),
				Headers: deserializeMap(read(mod, st[2], st[3])),
				Body:    append([]byte(nil), read(mod, st[4], st[5])...),
				Timeout: time.Duration(uint32(st[8])) * time.Millisecond,
			}
			c.ContextID = vm.pluginID
			if vm.cur != nil {
				c.ContextID = vm.cur.ID
			}
			vm.callouts[c.ID] = c
			mod.Memory().WriteUint32Le(uint32(st[9]), c.ID)
			if vm.OnCallout != nil {
				vm.OnCallout(c)
			}
			return statusOK
		}},
		{"proxy_call_foreign_function", params(6), nil, unimplemented},
		{"proxy_set_tick_period_milliseconds", params(1), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vmOf(ctx).tickPeriod = time.Duration(uint32(st[0])) * time.Millisecond
			return statusOK
		}},
		{"proxy_set_effective_context", params(1), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			id := uint32(st[0])
			if id == vm.pluginID {
				vm.cur = nil
				return statusOK
			}
			s, ok := vm.streams[id]
			if !ok {
				return statusBadArgument
			}
			vm.cur = s
			return statusOK
		}},
		{"proxy_done", nil, nil, func(context.Context, api.Module, []uint64) uint64 { return statusOK }},
		{"proxy_define_metric", params(4), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			name := string(read(mod, st[1], st[2]))
			rt.metricMu.Lock()
			id, ok := rt.metricIDs[name]
			if !ok {
				id = uint32(len(rt.metricNames))
				rt.metricIDs[name] = id
				rt.metricNames = append(rt.metricNames, name)
				rt.metricVals = append(rt.metricVals, 0)
				rt.metricTypes = append(rt.metricTypes, uint32(st[0]))
			}
			rt.metricMu.Unlock()
			mod.Memory().WriteUint32Le(uint32(st[3]), id)
			return statusOK
		}},
		{"proxy_increment_metric", []api.ValueType{i32, i64}, nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			rt.metricMu.Lock()
			defer rt.metricMu.Unlock()
			id := int(uint32(st[0]))
			if id >= len(rt.metricVals) {
				return statusNotFound
			}
			rt.metricVals[id] += int64(st[1])
			return statusOK
		}},
		{"proxy_record_metric", []api.ValueType{i32, i64}, nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			rt.metricMu.Lock()
			defer rt.metricMu.Unlock()
			id := int(uint32(st[0]))
			if id >= len(rt.metricVals) {
				return statusNotFound
			}
			rt.metricVals[id] = int64(st[1])
			return statusOK
		}},
		{"proxy_get_metric", params(2), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			rt.metricMu.Lock()
			defer rt.metricMu.Unlock()
			id := int(uint32(st[0]))
			if id >= len(rt.metricVals) {
				return statusNotFound
			}
			mod.Memory().WriteUint64Le(uint32(st[1]), uint64(rt.metricVals[id]))
			return statusOK
		}},
		{"proxy_get_property", params(4), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			v, ok := vm.properties[string(read(mod, st[0], st[1]))]
			if !ok {
				return statusNotFound
			}
			vm.give(mod, v, st[2], st[3])
			return statusOK
		}},
		{"proxy_set_property", params(4), nil, func(ctx context.Context, mod api.Module, st []uint64) uint64 {
			vm := vmOf(ctx)
			vm.properties[string(read(mod, st[0], st[1]))] = append([]byte(nil), read(mod, st[2], st[3])...)
			return statusOK
		}},
	}
	b := rt.r.NewHostModuleBuilder("env")
	for _, f := range fns {
		f := f
		b = b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, st []uint64) {
				if vmOf(ctx).inMalloc && !mallocAllowed["env."+f.name] {
					restricted("env." + f.name)
				}
				// i32 arguments arrive in 64-bit slots whose upper half is
				// unspecified.
				for i, t := range f.params {
					if t == i32 {
						st[i] = uint64(uint32(st[i]))
					}
				}
				st[0] = f.fn(ctx, mod, st)
			}), f.params, []api.ValueType{i32}).
			Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func unimplemented(context.Context, api.Module, []uint64) uint64 { return statusUnimplemented }

func removeKey(h [][2]string, key string) [][2]string {
	out := h[:0]
	for _, kv := range h {
		if kv[0] != key {
			out = append(out, kv)
		}
	}
	return out
}

func equalFoldASCII(a string, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
