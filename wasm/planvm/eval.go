package planvm

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Evaluation errors. Any error means the caller must deny.
var (
	ErrStepLimit       = errors.New("planvm: step limit exceeded")
	ErrDepthLimit      = errors.New("planvm: call depth limit exceeded")
	ErrConflict        = errors.New("planvm: conflicting values (complete rule or object key produced more than one value)")
	ErrUnknownEntry    = errors.New("planvm: unknown entrypoint")
	ErrMultipleResults = errors.New("planvm: entrypoint produced more than one result")

	errInsertNonObject = errors.New("planvm: insert into non-object")
)

// signals returned by exec besides break depths.
const (
	fellThrough = -1
	retSignal   = 1 << 30
)

// vm is the per-evaluation state; it is pooled per Program.
type vm struct {
	prog    *Program
	consts  []Value
	left    int // statements left before the step limit
	depth   int
	stack   []Value
	sp      int
	results []Value
	retVal  Value
	args    []Value // builtin argument scratch
	hints   []int32 // per constant: where dot found that key last
	// the last entrypoint evaluated (see eval)
	lastProg  *Program
	lastEntry string
	lastPlan  *plan
	now       int64
	hasNow    bool
	err       error
	cfg       evalConfig
	view      bool  // build composites in arena (Evaluator) or on the heap
	arena     arena // see arena.go
	// observing: the input may hold opaque strings, whose uses obs records
	// (observe.go); obsBad: one was used in a way that is not recorded.
	observing, obsBad bool
	obs               []Observation
}

// Eval evaluates entrypoint entry with input and data. An undefined input
// (the zero Value) is allowed. defined is false when the entrypoint produced
// no result. The result belongs to the caller.
func (p *Program) Eval(entry string, input, data Value, opts ...EvalOption) (result Value, defined bool, err error) {
	m := p.pool.Get().(*vm)
	defer p.pool.Put(m)
	return m.eval(p, entry, input, data, opts)
}

// Evaluator evaluates a Program's entrypoints one at a time, reusing its
// evaluation state, and returns results as views: a result (and anything
// reached from it) is valid only until the next call of Eval on the same
// Evaluator. Use it where the result is read right after evaluation and not
// kept, e.g. a per-request decision; an Evaluator is not safe for
// concurrent use.
type Evaluator struct {
	p *Program
	m vm
}

// NewEvaluator returns an Evaluator for p.
func (p *Program) NewEvaluator() *Evaluator { return &Evaluator{p: p, m: vm{view: true}} }

// Eval is Program.Eval, but its result is valid only until the next call.
func (e *Evaluator) Eval(entry string, input, data Value, opts ...EvalOption) (Value, bool, error) {
	return e.m.eval(e.p, entry, input, data, opts)
}

func (m *vm) eval(p *Program, entry string, input, data Value, opts []EvalOption) (result Value, defined bool, err error) {
	// A caller evaluates the same entrypoint, usually a constant: the plan
	// of the last one is reused when the name is the same string (a map
	// lookup hashes the name, which is slow in wasm).
	pl := m.lastPlan
	if m.lastProg != p || len(entry) != len(m.lastEntry) || unsafe.StringData(entry) != unsafe.StringData(m.lastEntry) {
		if pl = p.byName[entry]; pl == nil {
			return Value{}, false, fmt.Errorf("%w %q", ErrUnknownEntry, entry)
		}
		m.lastProg, m.lastEntry, m.lastPlan = p, entry, pl
	}
	// The previous result of this vm dies here.
	m.arena.reset()
	m.cfg = evalConfig{stepLimit: DefaultStepLimit}
	for _, o := range opts {
		o(&m.cfg)
	}
	m.prog, m.consts, m.left, m.depth, m.err = p, p.consts, m.cfg.stepLimit, 0, nil
	if len(m.hints) != len(p.consts) {
		m.hints = make([]int32, len(p.consts))
	}
	m.hasNow, m.now = m.cfg.hasNow, 0
	m.observing, m.obsBad = m.cfg.observe, false
	if len(m.obs) > 0 {
		clear(m.obs)
		m.obs = m.obs[:0]
	}
	if m.cfg.hasNow {
		m.now = m.cfg.now.UnixNano()
	}
	defer func() {
		if r := recover(); r != nil {
			result, defined, err = Value{}, false, fmt.Errorf("planvm: internal error: %v", r)
		}
		m.release()
	}()

	fr := m.alloc(pl.nlocals)
	fr[0], fr[1] = input, data
	m.exec(fr, pl.code)
	if m.err != nil {
		return Value{}, false, m.err
	}
	switch len(m.results) {
	case 0:
		return Value{}, false, nil
	case 1:
	default:
		return Value{}, false, ErrMultipleResults
	}
	rs := m.results[0]
	if r, ok := rs.Get("result"); ok {
		return r, true, nil
	}
	// Plans of queries without a "result" wrapper: return the value itself.
	return rs, true, nil
}

func (m *vm) release() {
	// Below sp are the entrypoint's frame and those of the calls that
	// returned while the stack was small (see call), and, after a
	// recovered panic, those of the calls it interrupted.
	clear(m.stack[:m.sp])
	m.sp = 0
	switch len(m.results) {
	case 0:
	case 1: // a decision: one result, cheaper to zero than to clear
		m.results[0] = Value{}
		m.results = m.results[:0]
	default:
		clear(m.results)
		m.results = m.results[:0]
	}
	if len(m.args) > 0 {
		clear(m.args)
		m.args = m.args[:0]
	}
	m.retVal = Value{}
	m.prog, m.consts = nil, nil
	m.cfg = evalConfig{}
}

// alloc takes a zeroed frame of n slots from the stack. Frames handed out
// earlier stay valid when the stack grows, because a new array is started
// instead of moving the old one.
func (m *vm) alloc(n int) []Value {
	if m.sp+n > len(m.stack) {
		m.stack = make([]Value, max(2*len(m.stack), m.sp+n+64))
	}
	// Frames are cleared when they are popped (and, after
	// an evaluation, the entrypoint's), so a fresh frame is already zero.
	f := m.stack[m.sp : m.sp+n : m.sp+n]
	m.sp += n
	return f
}

func (m *vm) ref(fr []Value, o operand) *Value {
	if o >= 0 {
		return &fr[o]
	}
	return &m.consts[^o]
}

// lookupRef is Value.Lookup on pointers; it returns nil when undefined.
func lookupRef(src, key *Value) *Value {
	switch src.k {
	case KindObject:
		var i int
		if key.k == KindString {
			i = src.c.findStr(key.s)
		} else {
			i = src.c.find(*key)
		}
		if i >= 0 {
			return &src.c.vals[i]
		}
	case KindArray:
		if key.k == KindNumber {
			if n, ok := key.AsInt(); ok && n >= 0 && n < int64(len(src.c.elems)) {
				return &src.c.elems[n]
			}
		}
	case KindSet:
		if src.c.find(*key) >= 0 {
			return key
		}
	}
	return nil
}

// dot is lookupRef for DotStmt. A constant string key is looked up in a
// small object first where it was found last time (m.hints, by constant):
// the objects of one request have the same shape as those of the last one,
// so most lookups compare one key instead of scanning.
func (m *vm) dot(src, key *Value, o operand) *Value {
	if o >= 0 || src.k != KindObject || key.k != KindString || src.c.strIdx != nil || src.c.othIdx != nil {
		if key.opq != 0 {
			return m.observeLookup(src, key)
		}
		if m.observing && key.k >= KindArray && mayHoldOpaque(key) {
			m.spoil() // a composite key is compared by content
		}
		return lookupRef(src, key)
	}
	es, k := src.c.elems, key.s
	h := &m.hints[^o]
	if i := int(*h); i < len(es) {
		if e := &es[i]; e.k == KindString && len(e.s) == len(k) && sameBytes(e.s, k) {
			return &src.c.vals[i]
		}
	}
	for i := range es {
		if e := &es[i]; e.k == KindString && len(e.s) == len(k) && sameBytes(e.s, k) {
			*h = int32(i)
			return &src.c.vals[i]
		}
	}
	return nil
}

// equal is equalRef, observed while the input may hold opaque strings.
func (m *vm) equal(a, b *Value) bool {
	if m.observing {
		return m.observeEqual(a, b)
	}
	return equalRef(a, b)
}

// equalRef is Equal with a fast path for scalars.
func equalRef(a, b *Value) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case KindString:
		return a.s == b.s
	case KindBool, KindNull:
		return a.i == b.i
	case KindNumber:
		if !a.text && !b.text {
			return a.i == b.i
		}
	}
	return Equal(*a, *b)
}

func (m *vm) read(fr []Value, o operand) Value {
	if o >= 0 {
		return fr[o]
	}
	return m.consts[^o]
}

// exec runs a flat stream (see flatten). It returns fellThrough when the
// stream ran to its end, retSignal on return, and, for the body of a scan
// or with, n >= 0 when a statement or break left the body's block and n
// blocks around it. Evaluation errors are stored in m.err and end execution
// with retSignal.
func (m *vm) exec(fr []Value, code []instr) int {
	for pc := 0; pc < len(code); {
		in := &code[pc]
		pc++
		m.left -= int(in.steps)
		if m.left < 0 {
			return m.fail(ErrStepLimit)
		}
		switch in.op {
		case opAssignVar, opAssignInt, opMakeNumber:
			fr[in.a] = *m.ref(fr, in.x)
		case opAssignVarOnce:
			// Pointers, not copies (see opDot).
			v, t := m.ref(fr, in.x), &fr[in.a]
			if t.k != KindUndefined && !m.equal(t, v) {
				return m.fail(ErrConflict)
			}
			*t = *v
		case opJump:
			goto exit
		case opCallFunc:
			v := m.call(in.ext.fn, nil, fr, in.ext.args)
			if m.err != nil {
				return retSignal
			}
			if v.k == KindUndefined {
				goto exit
			}
			fr[in.a] = *v
		case opDot:
			// Pointers, not copies: two 48-byte Values do not fit the
			// register ABI and this is the most frequent statement.
			v := m.dot(m.ref(fr, in.x), m.ref(fr, in.y), in.y)
			if v == nil {
				goto exit
			}
			fr[in.a] = *v
		case opEqual:
			a, b := m.ref(fr, in.x), m.ref(fr, in.y)
			if a.k == KindUndefined || b.k == KindUndefined || !m.equal(a, b) {
				goto exit
			}
		case opNotEqual:
			a, b := m.ref(fr, in.x), m.ref(fr, in.y)
			if a.k == KindUndefined || b.k == KindUndefined || m.equal(a, b) {
				goto exit
			}
		case opIsDefined:
			if fr[in.a].k == KindUndefined {
				goto exit
			}
		case opIsUndefined:
			if fr[in.a].k != KindUndefined {
				goto exit
			}
		case opMakeNull:
			fr[in.a] = Value{k: KindNull}
		case opMakeObject:
			h := &m.prog.sizes[in.b]
			var v Value
			if m.view {
				v = m.arena.object(int(loadInt32(h)))
			} else {
				v = objectWithCap(int(loadInt32(h)))
			}
			v.c.size = h
			fr[in.a] = v
		case opObjectInsert:
			obj := &fr[in.a]
			if obj.k != KindObject {
				return m.fail(errInsertNonObject)
			}
			k, v := m.ref(fr, in.x), m.ref(fr, in.y)
			if k.k == KindUndefined || v.k == KindUndefined {
				goto exit
			}
			if m.observing && mayHoldOpaque(k) {
				m.spoil() // an object key is hashed and compared by content
			}
			obj.c.objInsertRef(k, v)
		case opResetLocal:
			fr[in.a] = Value{}
		case opReturnLocal:
			m.retVal = fr[in.a]
			return retSignal
		default:
			switch brk := m.execRare(fr, in); brk {
			case fellThrough:
			case retSignal:
				return brk
			case 0:
				goto exit
			default: // leaves brk blocks around the statement's
				t := breakTarget(in.ext.exits, in.ext.inBody, brk)
				if t < 0 {
					return ^int(t)
				}
				pc = int(t)
			}
		}
		continue
	exit: // the statement was undefined, or a jump
		if in.exit < 0 {
			return ^int(in.exit)
		}
		m.left -= int(in.skipped)
		pc = int(in.exit)
	}
	return fellThrough
}

// execRare runs the statements that are not on a proxy decision's path.
// exec is kept small: in wasm, every statement pays for the size of the
// function that dispatches it (the JIT compiler moves more values between
// registers and stack on each of its jumps), and a 34-way switch costs
// more comparisons than an 18-way one.
//
//go:noinline
func (m *vm) execRare(fr []Value, in *instr) int {
	switch in.op {
	case opNop:
	case opArrayAppend:
		return m.execArrayAppend(fr, in)
	case opCallDynamic:
		return m.execCallDynamic(fr, in)
	case opCallBuiltin:
		return m.execCallBuiltin(fr, in)
	case opIsArray:
		if m.read(fr, in.x).k != KindArray {
			return 0
		}
	case opIsObject:
		if m.read(fr, in.x).k != KindObject {
			return 0
		}
	case opIsSet:
		if m.read(fr, in.x).k != KindSet {
			return 0
		}
	case opLen:
		v := m.read(fr, in.x)
		if v.opq != 0 {
			m.spoil() // a string's length is its content's
		}
		fr[in.a] = Int(int64(v.Len()))
	case opMakeArray:
		if m.view {
			fr[in.a] = m.arena.array(int(in.b))
		} else {
			fr[in.a] = arrayOf(make([]Value, 0, in.b))
		}
	case opMakeSet:
		h := &m.prog.sizes[in.b]
		var v Value
		if m.view {
			v = m.arena.set(int(loadInt32(h)))
		} else {
			v = setWithCap(int(loadInt32(h)))
		}
		v.c.size = h
		fr[in.a] = v
	case opObjectInsertOnce:
		return m.execObjectInsertOnce(fr, in)
	case opObjectMerge:
		fr[in.a] = merge(fr[in.b], fr[in.c])
	case opResultSetAdd:
		return m.execResultSetAdd(fr, in)
	case opScan:
		return m.scan(fr, in)
	case opSetAdd:
		return m.execSetAdd(fr, in)
	case opWith:
		return m.execWith(fr, in)
	default:
		return m.fail(fmt.Errorf("planvm: bad opcode %d", in.op))
	}
	return fellThrough
}

func (m *vm) fail(err error) int {
	if m.err == nil {
		m.err = err
	}
	return retSignal
}

// scan iterates over arrays, objects and sets in OPA's order.
func (m *vm) scan(fr []Value, in *instr) int {
	src := fr[in.a]
	body := func(k, v Value) int {
		fr[in.b], fr[in.c] = k, v
		brk := m.exec(fr, in.ext.body)
		switch {
		case brk == retSignal:
			return brk
		case brk <= 0:
			return fellThrough // next element
		case brk == 1:
			return 0 // leaves the scan; continue after it
		default:
			return brk - 1 // becomes brk-2 relative to the enclosing block, +1 for the marker
		}
	}
	var res int = fellThrough
	switch src.k {
	case KindArray:
		for i := 0; i < len(src.c.elems); i++ {
			if r := body(Int(int64(i)), src.c.elems[i]); r != fellThrough {
				res = r
				break
			}
		}
	case KindObject:
		for _, j := range src.c.sortedOrder() {
			if r := body(src.c.elems[j], src.c.vals[j]); r != fellThrough {
				res = r
				break
			}
		}
	case KindSet:
		for _, j := range src.c.sortedOrder() {
			e := src.c.elems[j]
			if r := body(e, e); r != fellThrough {
				res = r
				break
			}
		}
	}
	switch {
	case res == fellThrough, res == 0:
		return fellThrough
	case res == retSignal:
		return res
	default:
		return res - 1
	}
}

// call runs a plan function. Arguments come either from args or from the
// caller's frame and operands (avoiding a copy). The result is left in
// m.retVal (undefined on error), which the caller reads before anything
// else runs: returning the 48-byte Value would copy it twice.
func (m *vm) call(fn *function, args []Value, cfr []Value, ops []operand) *Value {
	if m.depth >= DefaultMaxDepth {
		m.fail(ErrDepthLimit)
		m.retVal = Value{}
		return &m.retVal
	}
	m.depth++
	sp := m.sp
	fr := m.alloc(fn.nlocals)
	if args != nil {
		for j, p := range fn.params {
			if j < len(args) {
				fr[p] = args[j]
			}
		}
	} else {
		for j, p := range fn.params {
			fr[p] = *m.ref(cfr, ops[j])
		}
	}
	returned := m.exec(fr, fn.code) == retSignal
	switch {
	case m.err != nil:
		m.retVal = Value{}
	case !returned:
		m.retVal = fr[fn.ret]
	}
	// The frame is left as it is while the stack is small: release clears
	// what one evaluation used at once, and a clear per call (a few calls
	// of the runtime and memory.fill in wasm) cost more than the frames'
	// contents. Above stackKeep slots (deep recursion, a function called
	// per element of a large collection) frames are cleared and reused.
	if m.sp > stackKeep {
		clear(fr)
		m.sp = sp
	}
	m.depth--
	return &m.retVal
}

// stackKeep bounds the slots an evaluation leaves uncleared (see call).
const stackKeep = 1024

func (m *vm) lookupDynamic(fr []Value, path []operand) *function {
	n := m.prog.dynamic
	for j := range path {
		seg := m.read(fr, path[j])
		if seg.k != KindString || n.children == nil {
			return nil
		}
		if seg.opq != 0 {
			m.spoil()
		}
		if n = n.children[seg.s]; n == nil {
			return nil
		}
	}
	return n.fn
}

// merge combines two objects recursively like OPA's runtime: a wins over b
// where they disagree on a non-object value.
func merge(a, b Value) Value {
	if !a.IsDefined() {
		return b
	}
	if !b.IsDefined() || a.k != KindObject || b.k != KindObject {
		return a
	}
	out := emptyObject(len(a.c.elems) + len(b.c.elems))
	for i, k := range a.c.elems {
		av := a.c.vals[i]
		if j := b.c.find(k); j >= 0 {
			out.c.append(k, merge(av, b.c.vals[j]), true)
		} else {
			out.c.append(k, av, true)
		}
	}
	for i, k := range b.c.elems {
		if a.c.find(k) < 0 {
			out.c.append(k, b.c.vals[i], true)
		}
	}
	return out
}

// upsert returns a copy of doc with value placed at path, creating
// intermediate objects; doc itself is left untouched.
func upsert(doc Value, path []Value, value Value) Value {
	if len(path) == 0 {
		return value
	}
	out := emptyObject(0)
	if doc.k == KindObject {
		out = shallowCopyObject(doc)
	}
	child, _ := out.Lookup(path[0])
	out.c.objInsert(path[0], upsert(child, path[1:], value))
	return out
}

func shallowCopyObject(v Value) Value {
	out := emptyObject(len(v.c.elems))
	for i, k := range v.c.elems {
		out.c.append(k, v.c.vals[i], true)
	}
	return out
}

// nowNS returns the evaluation's fixed clock.
func (m *vm) nowNS() int64 {
	if !m.hasNow {
		m.now = time.Now().UnixNano()
		m.hasNow = true
	}
	return m.now
}

// execCallDynamic is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execCallDynamic(fr []Value, in *instr) int {
	fn := m.lookupDynamic(fr, in.ext.dpath)
	if fn == nil {
		return 0
	}
	args := make([]Value, len(in.ext.largs))
	for j, l := range in.ext.largs {
		args[j] = fr[l]
	}
	v := m.call(fn, args, nil, nil)
	if m.err != nil {
		return retSignal
	}
	if v.k == KindUndefined {
		// The planner expects a found-but-undefined function to
		// leave the whole lookup structure (three blocks up).
		return 3
	}
	fr[in.a] = *v
	return fellThrough
}

// execCallBuiltin is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execCallBuiltin(fr []Value, in *instr) int {
	base := len(m.args)
	for j := range in.ext.args {
		v := m.read(fr, in.ext.args[j])
		if !v.IsDefined() {
			m.args = m.args[:base]
			return 0
		}
		m.args = append(m.args, v)
	}
	v, ok := in.ext.bi.fn(m, m.args[base:])
	if m.observing {
		m.observeCall(in.ext.bi, m.args[base:], v, ok)
	}
	clear(m.args[base:])
	m.args = m.args[:base]
	if m.err != nil {
		return retSignal
	}
	if !ok || !v.IsDefined() {
		return 0
	}
	fr[in.a] = v
	return fellThrough
}

// execWith is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execWith(fr []Value, in *instr) int {
	saved := fr[in.a]
	v := m.read(fr, in.x)
	if len(in.ext.path) == 0 {
		fr[in.a] = v
	} else {
		fr[in.a] = upsert(saved, in.ext.path, v)
	}
	brk := m.exec(fr, in.ext.body)
	fr[in.a] = saved
	switch {
	case brk == retSignal:
		return brk
	case brk == 0:
		return 0
	case brk > 0:
		return brk - 1
	}
	return fellThrough
}

// execObjectInsertOnce is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execObjectInsertOnce(fr []Value, in *instr) int {
	obj := fr[in.a]
	if obj.k != KindObject {
		return m.fail(errInsertNonObject)
	}
	k, v := m.read(fr, in.x), m.read(fr, in.y)
	if !k.IsDefined() || !v.IsDefined() {
		return 0
	}
	if m.observing && (mayHoldOpaque(&k) || mayHoldOpaque(&v)) {
		m.spoil() // keys are compared, and values on a conflict
	}
	if j := obj.c.find(k); j >= 0 {
		if !Equal(obj.c.vals[j], v) {
			return m.fail(ErrConflict)
		}
		return fellThrough
	}
	obj.c.append(k, v, true)
	return fellThrough
}

// execResultSetAdd is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execResultSetAdd(fr []Value, in *instr) int {
	v := fr[in.a]
	if !v.IsDefined() {
		return 0
	}
	if m.observing && mayHoldOpaque(&v) {
		m.spoil() // the result would carry an opaque string's content
	}
	dup := false
	for _, r := range m.results {
		if Equal(r, v) {
			dup = true
			break
		}
	}
	if !dup {
		m.results = append(m.results, v)
	}
	return fellThrough
}

// execArrayAppend is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execArrayAppend(fr []Value, in *instr) int {
	arr := fr[in.a]
	if arr.k != KindArray {
		return m.fail(errors.New("planvm: append to non-array"))
	}
	v := m.read(fr, in.x)
	if !v.IsDefined() {
		return 0
	}
	arr.c.elems = append(arr.c.elems, v)
	return fellThrough
}

// execSetAdd is kept out of exec so that exec's frame stays small.
//
//go:noinline
func (m *vm) execSetAdd(fr []Value, in *instr) int {
	set := fr[in.a]
	if set.k != KindSet {
		return m.fail(errors.New("planvm: add to non-set"))
	}
	v := m.read(fr, in.x)
	if !v.IsDefined() {
		return 0
	}
	if m.observing && mayHoldOpaque(&v) {
		m.spoil() // set elements are compared by content
	}
	set.c.setAdd(v)
	return fellThrough
}
