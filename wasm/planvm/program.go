package planvm

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Program is a loaded, precompiled plan. It is safe for concurrent use.
type Program struct {
	plans    []*plan
	byName   map[string]*plan
	funcs    map[string]*function
	dynamic  *dynNode       // functions by data path, for CallDynamicStmt
	consts   []Value        // constants referenced by operands
	sizes    []atomic.Int32 // size hints of MakeObject/MakeSet statements
	pool     sync.Pool
	maxSlots int
}

type plan struct {
	name    string
	code    []instr // flat (see flatten)
	nlocals int
}

type function struct {
	name    string
	params  []int32
	ret     int32
	code    []instr   // flat (see flatten)
	tree    [][]instr // as read, while loading
	tslots  int       // frame size of tree
	nlocals int
}

type dynNode struct {
	fn       *function
	children map[string]*dynNode
}

type opcode uint8

const (
	opNop opcode = iota
	opArrayAppend
	opAssignInt
	opAssignVarOnce
	opAssignVar
	opBlock
	opBreak
	opCallDynamic
	opCallFunc
	opCallBuiltin
	opDot
	opEqual
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opLen
	opMakeArray
	opMakeNull
	opMakeNumber // MakeNumberInt and MakeNumberRef: constant operand x
	opMakeObject
	opMakeSet
	opNotEqual
	opNot
	opObjectInsertOnce
	opObjectInsert
	opObjectMerge
	opResetLocal
	opResultSetAdd
	opReturnLocal
	opScan
	opSetAdd
	opWith
	opJump // flat code only: continue at exit (see flatten)
)

// operand is a local slot (>= 0) or a constant (^index into
// Program.consts).
type operand int32

// instr is one precompiled statement, kept small for the cache: rarely used
// fields live in ext. Fields are used per opcode.
type instr struct {
	op      opcode
	steps   uint8 // step count: 1, plus enclosing Block/Not statements folded in (see flatten)
	skipped uint8 // steps of the statements the exit jumps over (see thread)
	a, b, c int32 // locals (target/source/key/value) or break index
	x, y    operand
	exit    target // where execution continues when the statement is undefined
	ext     *instrExt
}

type instrExt struct {
	blocks [][]instr // BlockStmt, as read (before flatten)
	block  []instr   // NotStmt, ScanStmt, WithStmt, as read (before flatten)
	body   []instr   // ScanStmt, WithStmt: the block, flat
	exits  []target  // ScanStmt, WithStmt, CallDynamicStmt: see breakTarget
	inBody bool      // ... in the body of a ScanStmt or WithStmt
	fn     *function
	bi     *builtin
	args   []operand
	largs  []int32
	path   []Value // With path (strings)
	dpath  []operand
}

// maxLocal bounds local indexes so a hostile plan cannot demand huge frames.
const maxLocal = 1 << 16

// loader precompiles one plan. OPA numbers locals plan-wide, so a function
// may use locals 40..60 only; they are renumbered densely per function so
// that frames are small.
type loader struct {
	strings []Value
	consts  []Value
	constIx map[string]int // string constants by value, deduplicated
	funcs   map[string]*function
	slots   map[int32]int32
	nsizes  int32
}

func (ld *loader) sizeSlot() int32 {
	ld.nsizes++
	return ld.nsizes - 1
}

// reset starts a new function whose first locals are fixed (params, or
// input and data for plans).
func (ld *loader) reset(fixed ...int32) {
	ld.slots = make(map[int32]int32, 32)
	for _, l := range fixed {
		ld.local(l)
	}
}

func (ld *loader) nslots() int { return len(ld.slots) }

// Load parses a plan (JSON from OPA's planner) and precompiles it. It fails
// on unknown statements and on calls of builtins the VM does not implement,
// naming them.
func Load(b []byte) (*Program, error) {
	doc, err := ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("planvm: parse plan: %w", err)
	}
	return LoadValue(doc)
}

// LoadValue precompiles a plan that is already parsed (by ParseJSON), such
// as the plan member of a policy document. The plan is read with the same
// JSON reader that reads inputs and data: there is one way to read JSON in
// the filter, and no reflection.
func LoadValue(doc Value) (*Program, error) {
	if doc.Kind() != KindObject {
		return nil, errors.New("planvm: parse plan: not an object")
	}
	ld := &loader{funcs: map[string]*function{}, constIx: map[string]int{}}
	static := ld.member(doc, "static")
	strs, err := ld.list(static, "strings")
	if err != nil {
		return nil, fmt.Errorf("planvm: parse plan: static.%w", err)
	}
	bfs, err := ld.list(static, "builtin_funcs")
	if err != nil {
		return nil, fmt.Errorf("planvm: parse plan: static.%w", err)
	}
	var missing []string
	for i := range bfs.Len() {
		name, err := ld.text(bfs.Index(i), "name")
		if err != nil {
			return nil, fmt.Errorf("planvm: parse plan: static.builtin_funcs[%d].%w", i, err)
		}
		if _, ok := builtins[name]; !ok {
			// Sorted by insertion: there are few, and a sort function
			// instantiated for strings would add 17 KB to the filter.
			j := len(missing)
			missing = append(missing, name)
			for ; j > 0 && missing[j-1] > name; j-- {
				missing[j] = missing[j-1]
			}
			missing[j] = name
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("planvm: unsupported builtins: %s", strings.Join(missing, ", "))
	}
	for i := range strs.Len() {
		s, err := ld.text(strs.Index(i), "value")
		if err != nil {
			return nil, fmt.Errorf("planvm: parse plan: static.strings[%d].%w", i, err)
		}
		ld.strings = append(ld.strings, String(s))
	}
	funcs, err := ld.list(ld.member(doc, "funcs"), "funcs")
	if err != nil {
		return nil, fmt.Errorf("planvm: parse plan: funcs.%w", err)
	}
	plans, err := ld.list(ld.member(doc, "plans"), "plans")
	if err != nil {
		return nil, fmt.Errorf("planvm: parse plan: plans.%w", err)
	}
	prog := &Program{byName: map[string]*plan{}, funcs: ld.funcs, dynamic: &dynNode{}}
	// Declare functions first so calls can resolve to pointers.
	for i := range funcs.Len() {
		f := funcs.Index(i)
		name, err := ld.text(f, "name")
		if err != nil {
			return nil, fmt.Errorf("planvm: func %d: %w", i, err)
		}
		path, err := ld.list(f, "path")
		if err != nil {
			return nil, fmt.Errorf("planvm: func %s: %w", name, err)
		}
		fn := &function{name: name}
		ld.funcs[name] = fn
		if path.Len() > 0 {
			n := prog.dynamic
			for j := range path.Len() {
				seg, ok := path.Index(j).AsString()
				if !ok {
					return nil, fmt.Errorf("planvm: func %s: path: not a list of strings", name)
				}
				if n.children == nil {
					n.children = map[string]*dynNode{}
				}
				c := n.children[seg]
				if c == nil {
					c = &dynNode{}
					n.children[seg] = c
				}
				n = c
			}
			n.fn = fn
		}
	}
	order := make([]*function, 0, funcs.Len())
	for i := range funcs.Len() {
		f := funcs.Index(i)
		name, _ := ld.text(f, "name")
		fn := ld.funcs[name]
		order = append(order, fn)
		if err := ld.function(fn, f); err != nil {
			return nil, fmt.Errorf("planvm: func %s: %w", name, err)
		}
	}
	// Flattened once all are read: small ones are inlined into callers.
	for _, fn := range order {
		fn.code, fn.nlocals = flatten(fn.tree, false, fn.tslots)
		prog.maxSlots = max(prog.maxSlots, fn.nlocals)
	}
	for i := range plans.Len() {
		p := plans.Index(i)
		name, err := ld.text(p, "name")
		if err != nil {
			return nil, fmt.Errorf("planvm: plan %d: %w", i, err)
		}
		ld.reset(0, 1) // input, data
		blocks, err := ld.blocks(p, "blocks")
		if err != nil {
			return nil, fmt.Errorf("planvm: plan %s: %w", name, err)
		}
		if ld.nslots() > maxLocal {
			return nil, fmt.Errorf("planvm: plan %s: too many locals", name)
		}
		code, n := flatten(blocks, false, ld.nslots())
		pl := &plan{name: name, code: code, nlocals: n}
		prog.plans = append(prog.plans, pl)
		prog.byName[name] = pl
		prog.maxSlots = max(prog.maxSlots, pl.nlocals)
	}
	for _, fn := range order {
		fn.tree = nil
	}
	prog.consts = ld.consts
	prog.sizes = make([]atomic.Int32, ld.nsizes)
	prog.pool.New = func() any { return &vm{} }
	return prog, nil
}

// function precompiles the parameters, return local and blocks of f.
func (ld *loader) function(fn *function, f Value) error {
	params, err := ld.list(f, "params")
	if err != nil {
		return err
	}
	raw := make([]int32, params.Len())
	for i := range raw {
		if raw[i], err = ld.localOf(params.Index(i), "params"); err != nil {
			return err
		}
	}
	ret, err := ld.localField(f, "return", false)
	if err != nil {
		return err
	}
	ld.reset(raw...)
	fn.params = make([]int32, len(raw))
	for i, p := range raw {
		fn.params[i] = ld.local(p)
	}
	fn.ret = ld.local(ret)
	blocks, err := ld.blocks(f, "blocks")
	if err != nil {
		return err
	}
	if ld.nslots() > maxLocal {
		return errors.New("too many locals")
	}
	fn.tree, fn.tslots = blocks, ld.nslots()
	return nil
}

// Reading the plan's JSON. OPA writes every field of a statement; a member
// that is null counts as absent, as it did for a struct decoder.

// member returns o[key], undefined when o is not an object, lacks key or
// holds null there.
func (ld *loader) member(o Value, key string) Value {
	v, _ := o.Get(key)
	if v.Kind() == KindNull {
		return Value{}
	}
	return v
}

// list returns the array o[key]; an absent member is an empty list.
func (ld *loader) list(o Value, key string) (Value, error) {
	v := ld.member(o, key)
	switch v.Kind() {
	case KindUndefined:
		return NewArray(), nil
	case KindArray:
		return v, nil
	}
	return Value{}, fmt.Errorf("%s: not an array", key)
}

// text returns the string o[key]; an absent member is "".
func (ld *loader) text(o Value, key string) (string, error) {
	v := ld.member(o, key)
	if !v.IsDefined() {
		return "", nil
	}
	s, ok := v.AsString()
	if !ok {
		return "", fmt.Errorf("%s: not a string", key)
	}
	return s, nil
}

// integer returns o[key] as an integer; an absent member is an error when
// required and 0 otherwise.
func (ld *loader) integer(o Value, key string, required bool) (int64, error) {
	v := ld.member(o, key)
	if !v.IsDefined() {
		if required {
			return 0, fmt.Errorf("%s: missing", key)
		}
		return 0, nil
	}
	return ld.integerOf(v, key)
}

func (ld *loader) integerOf(v Value, what string) (int64, error) {
	n, ok := v.AsInt64()
	if !ok {
		return 0, fmt.Errorf("%s: not an integer", what)
	}
	return n, nil
}

// localOf reads a local index: a non-negative integer in int32 range.
func (ld *loader) localOf(v Value, what string) (int32, error) {
	n, err := ld.integerOf(v, what)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%s: negative local", what)
	}
	if n > 1<<31-1 {
		return 0, fmt.Errorf("%s: local out of range", what)
	}
	return int32(n), nil
}

func (ld *loader) localField(o Value, key string, required bool) (int32, error) {
	v := ld.member(o, key)
	if !v.IsDefined() {
		if required {
			return 0, fmt.Errorf("%s: missing", key)
		}
		return 0, nil
	}
	return ld.localOf(v, key)
}

func (ld *loader) blocks(o Value, key string) ([][]instr, error) {
	rbs, err := ld.list(o, key)
	if err != nil {
		return nil, err
	}
	out := make([][]instr, rbs.Len())
	for i := range out {
		b, err := ld.block(rbs.Index(i))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (ld *loader) local(l int32) int32 {
	if d, ok := ld.slots[l]; ok {
		return d
	}
	d := int32(len(ld.slots))
	ld.slots[l] = d
	return d
}

// localAt reads the local index o[key] and maps it to its slot.
func (ld *loader) localAt(o Value, key string, required bool) (int32, error) {
	l, err := ld.localField(o, key, required)
	if err != nil {
		return 0, err
	}
	return ld.local(l), nil
}

// constant interns v into the constant table.
func (ld *loader) constant(v Value) operand {
	if s, ok := v.AsString(); ok {
		if i, ok := ld.constIx[s]; ok {
			return operand(^i)
		}
		ld.constIx[s] = len(ld.consts)
	}
	ld.consts = append(ld.consts, v)
	return operand(^(len(ld.consts) - 1))
}

func (ld *loader) str(i int64) (Value, error) {
	if i < 0 || i >= int64(len(ld.strings)) {
		return Value{}, fmt.Errorf("string index %d out of range", i)
	}
	return ld.strings[i], nil
}

// operandAt reads the operand o[key].
func (ld *loader) operandAt(o Value, key string) (operand, error) {
	return ld.operand(ld.member(o, key))
}

func (ld *loader) operand(v Value) (operand, error) {
	switch v.Kind() {
	case KindUndefined:
		return 0, errors.New("operand: missing")
	case KindObject:
	default:
		return 0, errors.New("operand: not an object")
	}
	typ, err := ld.text(v, "type")
	if err != nil {
		return 0, fmt.Errorf("operand: %w", err)
	}
	switch typ {
	case "local":
		l, err := ld.localField(v, "value", true)
		if err != nil {
			return 0, err
		}
		return operand(ld.local(l)), nil
	case "string_index":
		i, err := ld.integer(v, "value", true)
		if err != nil {
			return 0, err
		}
		s, err := ld.str(i)
		return ld.constant(s), err
	case "bool":
		b, ok := ld.member(v, "value").AsBool()
		if !ok {
			return 0, errors.New("value: not a boolean")
		}
		return ld.constant(Bool(b)), nil
	}
	return 0, fmt.Errorf("unknown operand type %q", typ)
}

func (ld *loader) block(rb Value) ([]instr, error) {
	if rb.Kind() != KindObject {
		return nil, errors.New("block: not an object")
	}
	stmts, err := ld.list(rb, "stmts")
	if err != nil {
		return nil, err
	}
	out := make([]instr, 0, stmts.Len())
	for i := range stmts.Len() {
		rs := stmts.Index(i)
		typ, err := ld.text(rs, "type")
		if err != nil {
			return nil, err
		}
		s := ld.member(rs, "stmt")
		if k := s.Kind(); k != KindUndefined && k != KindObject {
			return nil, fmt.Errorf("%s: stmt: not an object", typ)
		}
		in, err := ld.stmt(typ, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", typ, err)
		}
		out = append(out, in)
	}
	return out, nil
}

// target reads the statement's target local, which must be present.
func (ld *loader) target(s Value) (int32, error) {
	v := ld.member(s, "target")
	if !v.IsDefined() {
		return 0, errors.New("missing target")
	}
	if n, err := ld.integerOf(v, "target"); err == nil && n < 0 {
		return 0, errors.New("missing target")
	}
	l, err := ld.localOf(v, "target")
	if err != nil {
		return 0, err
	}
	return ld.local(l), nil
}

// subBlock reads the statement's nested block, which must be present.
func (ld *loader) subBlock(s Value) ([]instr, error) {
	b := ld.member(s, "block")
	if !b.IsDefined() {
		return nil, errors.New("missing block")
	}
	return ld.block(b)
}

// operands reads the operand list s[key].
func (ld *loader) operands(s Value, key string) ([]operand, error) {
	l, err := ld.list(s, key)
	if err != nil {
		return nil, err
	}
	var ops []operand
	for i := range l.Len() {
		op, err := ld.operand(l.Index(i))
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func (ld *loader) stmt(typ string, s Value) (instr, error) {
	var in instr
	var err error
	ext := &instrExt{}
	switch typ {
	case "NopStmt":
		in.op = opNop
	case "ArrayAppendStmt":
		in.op = opArrayAppend
		if in.a, err = ld.localAt(s, "array", false); err == nil {
			in.x, err = ld.operandAt(s, "value")
		}
	case "AssignIntStmt":
		in.op = opAssignInt
		var n int64
		if n, err = ld.integer(s, "value", true); err == nil {
			in.x = ld.constant(Int(n))
			in.a, err = ld.target(s)
		}
	case "AssignVarOnceStmt", "AssignVarStmt":
		in.op = opAssignVar
		if typ == "AssignVarOnceStmt" {
			in.op = opAssignVarOnce
		}
		if in.x, err = ld.operandAt(s, "source"); err == nil {
			in.a, err = ld.target(s)
		}
	case "BlockStmt":
		in.op = opBlock
		ext.blocks, err = ld.blocks(s, "blocks")
	case "BreakStmt":
		in.op = opBreak
		var n int64
		if n, err = ld.integer(s, "index", false); err == nil && (n < 0 || n > 1<<31-1) {
			err = errors.New("break index out of range")
		}
		in.a = int32(n)
	case "CallDynamicStmt":
		in.op = opCallDynamic
		if in.a, err = ld.localAt(s, "result", false); err != nil {
			break
		}
		var args Value
		if args, err = ld.list(s, "args"); err != nil {
			break
		}
		for i := range args.Len() {
			var l int32
			if l, err = ld.localOf(args.Index(i), "args"); err != nil {
				break
			}
			ext.largs = append(ext.largs, ld.local(l))
		}
		if err == nil {
			ext.dpath, err = ld.operands(s, "path")
		}
	case "CallStmt":
		if in.a, err = ld.localAt(s, "result", false); err != nil {
			break
		}
		if ext.args, err = ld.operands(s, "args"); err != nil {
			break
		}
		var name string
		if name, err = ld.text(s, "func"); err != nil {
			break
		}
		if fn, ok := ld.funcs[name]; ok {
			in.op, ext.fn = opCallFunc, fn
			if len(ext.args) != len(fn.params) {
				err = fmt.Errorf("call of %s with %d args, want %d", name, len(ext.args), len(fn.params))
			}
		} else if bi, ok := builtins[name]; ok {
			in.op, ext.bi = opCallBuiltin, bi
			if bi.arity >= 0 && len(ext.args) != bi.arity {
				err = fmt.Errorf("call of %s with %d args, want %d", name, len(ext.args), bi.arity)
			}
		} else {
			err = fmt.Errorf("unsupported builtin or unknown function %q", name)
		}
	case "DotStmt":
		in.op = opDot
		if in.x, err = ld.operandAt(s, "source"); err == nil {
			if in.y, err = ld.operandAt(s, "key"); err == nil {
				in.a, err = ld.target(s)
			}
		}
	case "EqualStmt", "NotEqualStmt":
		in.op = opEqual
		if typ == "NotEqualStmt" {
			in.op = opNotEqual
		}
		if in.x, err = ld.operandAt(s, "a"); err == nil {
			in.y, err = ld.operandAt(s, "b")
		}
	case "IsArrayStmt", "IsObjectStmt", "IsSetStmt":
		switch typ {
		case "IsArrayStmt":
			in.op = opIsArray
		case "IsObjectStmt":
			in.op = opIsObject
		default:
			in.op = opIsSet
		}
		in.x, err = ld.operandAt(s, "source")
	case "IsDefinedStmt", "IsUndefinedStmt":
		in.op = opIsDefined
		if typ == "IsUndefinedStmt" {
			in.op = opIsUndefined
		}
		in.a, err = ld.localAt(s, "source", true)
	case "LenStmt":
		in.op = opLen
		if in.x, err = ld.operandAt(s, "source"); err == nil {
			in.a, err = ld.target(s)
		}
	case "MakeArrayStmt":
		in.op = opMakeArray
		var n int64
		if n, err = ld.integer(s, "capacity", false); err == nil {
			in.b = int32(min(max(n, 0), 1024))
			in.a, err = ld.target(s)
		}
	case "MakeNullStmt":
		in.op = opMakeNull
		in.a, err = ld.target(s)
	case "MakeNumberIntStmt":
		in.op = opMakeNumber
		var n int64
		if n, err = ld.integer(s, "value", true); err == nil {
			in.x = ld.constant(Int(n))
			in.a, err = ld.target(s)
		}
	case "MakeNumberRefStmt":
		in.op = opMakeNumber
		// Older planners wrote the field as "Index".
		key := "index"
		if !ld.member(s, key).IsDefined() {
			key = "Index"
		}
		var idx int64
		if idx, err = ld.integer(s, key, false); err != nil {
			break
		}
		if !ld.member(s, key).IsDefined() {
			err = errors.New("missing index")
			break
		}
		var sv Value
		if sv, err = ld.str(idx); err != nil {
			break
		}
		txt, _ := sv.AsString()
		n, ok := Number(txt)
		if !ok {
			err = fmt.Errorf("invalid number %q", txt)
			break
		}
		in.x = ld.constant(n)
		in.a, err = ld.target(s)
	case "MakeObjectStmt":
		in.op = opMakeObject
		in.b = ld.sizeSlot()
		in.a, err = ld.target(s)
	case "MakeSetStmt":
		in.op = opMakeSet
		in.b = ld.sizeSlot()
		in.a, err = ld.target(s)
	case "NotStmt":
		in.op = opNot
		ext.block, err = ld.subBlock(s)
	case "ObjectInsertOnceStmt", "ObjectInsertStmt":
		in.op = opObjectInsert
		if typ == "ObjectInsertOnceStmt" {
			in.op = opObjectInsertOnce
		}
		if in.a, err = ld.localAt(s, "object", false); err != nil {
			break
		}
		if in.x, err = ld.operandAt(s, "key"); err == nil {
			in.y, err = ld.operandAt(s, "value")
		}
	case "ObjectMergeStmt":
		in.op = opObjectMerge
		if in.b, err = ld.localAt(s, "a", true); err != nil {
			break
		}
		if in.c, err = ld.localAt(s, "b", true); err != nil {
			break
		}
		in.a, err = ld.target(s)
	case "ResetLocalStmt":
		in.op = opResetLocal
		in.a, err = ld.target(s)
	case "ResultSetAddStmt":
		in.op = opResultSetAdd
		in.a, err = ld.localAt(s, "value", true)
	case "ReturnLocalStmt":
		in.op = opReturnLocal
		in.a, err = ld.localAt(s, "source", true)
	case "ScanStmt":
		in.op = opScan
		if in.a, err = ld.localAt(s, "source", true); err != nil {
			break
		}
		if in.b, err = ld.localAt(s, "key", true); err != nil {
			break
		}
		if in.c, err = ld.localAt(s, "value", true); err != nil {
			break
		}
		ext.block, err = ld.subBlock(s)
	case "SetAddStmt":
		in.op = opSetAdd
		if in.a, err = ld.localAt(s, "set", false); err == nil {
			in.x, err = ld.operandAt(s, "value")
		}
	case "WithStmt":
		in.op = opWith
		if in.a, err = ld.localAt(s, "local", false); err != nil {
			break
		}
		var path Value
		if path, err = ld.list(s, "path"); err != nil {
			break
		}
		for i := range path.Len() {
			var idx int64
			if idx, err = ld.integerOf(path.Index(i), "path"); err != nil {
				return in, err
			}
			var v Value
			if v, err = ld.str(idx); err != nil {
				return in, err
			}
			ext.path = append(ext.path, v)
		}
		if in.x, err = ld.operandAt(s, "value"); err != nil {
			break
		}
		ext.block, err = ld.subBlock(s)
	default:
		err = errors.New("unknown statement type")
	}
	switch in.op {
	case opBlock, opNot, opScan, opCallDynamic, opCallFunc, opCallBuiltin, opWith:
		in.ext = ext
	}
	return in, err
}
