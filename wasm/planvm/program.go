package planvm

import (
	"encoding/json"
	"fmt"
	"sort"
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
	blocks  [][]instr
	nlocals int
}

type function struct {
	name    string
	params  []int32
	ret     int32
	blocks  [][]instr
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
)

// operand is a local slot (>= 0) or a constant (^index into
// Program.consts).
type operand int32

// instr is one precompiled statement, kept small for the cache: rarely used
// fields live in ext. Fields are used per opcode.
type instr struct {
	op      opcode
	a, b, c int32 // locals (target/source/key/value) or break index
	x, y    operand
	block   []instr
	ext     *instrExt
}

type instrExt struct {
	blocks [][]instr
	fn     *function
	bi     *builtin
	args   []operand
	largs  []int32
	path   []Value // With path (strings)
	dpath  []operand
}

// raw JSON shapes of the plan.

type rawPolicy struct {
	Static struct {
		Strings      []struct{ Value string } `json:"strings"`
		BuiltinFuncs []struct {
			Name string `json:"name"`
		} `json:"builtin_funcs"`
	} `json:"static"`
	Plans struct {
		Plans []struct {
			Name   string     `json:"name"`
			Blocks []rawBlock `json:"blocks"`
		} `json:"plans"`
	} `json:"plans"`
	Funcs struct {
		Funcs []struct {
			Name   string     `json:"name"`
			Params []int32    `json:"params"`
			Return int32      `json:"return"`
			Blocks []rawBlock `json:"blocks"`
			Path   []string   `json:"path"`
		} `json:"funcs"`
	} `json:"funcs"`
}

type rawBlock struct {
	Stmts []struct {
		Type string          `json:"type"`
		Stmt json.RawMessage `json:"stmt"`
	} `json:"stmts"`
}

type rawOperand struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

type rawStmt struct {
	Source   json.RawMessage `json:"source"`
	Target   *int32          `json:"target"`
	Key      json.RawMessage `json:"key"`
	Value    json.RawMessage `json:"value"`
	A        json.RawMessage `json:"a"`
	B        json.RawMessage `json:"b"`
	Array    int32           `json:"array"`
	Object   int32           `json:"object"`
	Set      int32           `json:"set"`
	Local    int32           `json:"local"`
	Index    *int            `json:"index"`
	IndexOld *int            `json:"Index"`
	Func     string          `json:"func"`
	Args     json.RawMessage `json:"args"`
	Result   int32           `json:"result"`
	Path     json.RawMessage `json:"path"`
	Block    *rawBlock       `json:"block"`
	Blocks   []rawBlock      `json:"blocks"`
	Capacity int32           `json:"capacity"`
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
	var raw rawPolicy
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("planvm: parse plan: %w", err)
	}
	var missing []string
	for _, bf := range raw.Static.BuiltinFuncs {
		if _, ok := builtins[bf.Name]; !ok {
			missing = append(missing, bf.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("planvm: unsupported builtins: %s", strings.Join(missing, ", "))
	}
	ld := &loader{funcs: map[string]*function{}, constIx: map[string]int{}}
	for _, s := range raw.Static.Strings {
		ld.strings = append(ld.strings, String(s.Value))
	}
	prog := &Program{byName: map[string]*plan{}, funcs: ld.funcs, dynamic: &dynNode{}}
	// Declare functions first so calls can resolve to pointers.
	for _, f := range raw.Funcs.Funcs {
		fn := &function{name: f.Name}
		ld.funcs[f.Name] = fn
		if len(f.Path) > 0 {
			n := prog.dynamic
			for _, seg := range f.Path {
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
	for _, f := range raw.Funcs.Funcs {
		fn := ld.funcs[f.Name]
		ld.reset(f.Params...)
		fn.params = make([]int32, len(f.Params))
		for i, p := range f.Params {
			fn.params[i] = ld.local(p)
		}
		fn.ret = ld.local(f.Return)
		blocks, err := ld.blocks(f.Blocks)
		if err != nil {
			return nil, fmt.Errorf("planvm: func %s: %w", f.Name, err)
		}
		if ld.nslots() > maxLocal {
			return nil, fmt.Errorf("planvm: func %s: too many locals", f.Name)
		}
		fn.blocks, fn.nlocals = blocks, ld.nslots()
		prog.maxSlots = max(prog.maxSlots, fn.nlocals)
	}
	for _, p := range raw.Plans.Plans {
		ld.reset(0, 1) // input, data
		blocks, err := ld.blocks(p.Blocks)
		if err != nil {
			return nil, fmt.Errorf("planvm: plan %s: %w", p.Name, err)
		}
		if ld.nslots() > maxLocal {
			return nil, fmt.Errorf("planvm: plan %s: too many locals", p.Name)
		}
		pl := &plan{name: p.Name, blocks: blocks, nlocals: ld.nslots()}
		prog.plans = append(prog.plans, pl)
		prog.byName[p.Name] = pl
		prog.maxSlots = max(prog.maxSlots, pl.nlocals)
	}
	prog.consts = ld.consts
	prog.sizes = make([]atomic.Int32, ld.nsizes)
	prog.pool.New = func() any { return &vm{} }
	return prog, nil
}

func (ld *loader) blocks(rbs []rawBlock) ([][]instr, error) {
	out := make([][]instr, len(rbs))
	for i := range rbs {
		b, err := ld.block(&rbs[i])
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

// constant interns v into the constant table.
func (ld *loader) constant(v Value) operand {
	if v.k == KindString {
		if i, ok := ld.constIx[v.s]; ok {
			return operand(^i)
		}
		ld.constIx[v.s] = len(ld.consts)
	}
	ld.consts = append(ld.consts, v)
	return operand(^(len(ld.consts) - 1))
}

func (ld *loader) str(i int) (Value, error) {
	if i < 0 || i >= len(ld.strings) {
		return Value{}, fmt.Errorf("string index %d out of range", i)
	}
	return ld.strings[i], nil
}

func (ld *loader) operand(raw json.RawMessage) (operand, error) {
	var ro rawOperand
	if err := json.Unmarshal(raw, &ro); err != nil {
		return 0, fmt.Errorf("operand: %w", err)
	}
	switch ro.Type {
	case "local":
		var l int32
		if err := json.Unmarshal(ro.Value, &l); err != nil {
			return 0, err
		}
		if l < 0 {
			return 0, fmt.Errorf("negative local")
		}
		return operand(ld.local(l)), nil
	case "string_index":
		var i int
		if err := json.Unmarshal(ro.Value, &i); err != nil {
			return 0, err
		}
		v, err := ld.str(i)
		return ld.constant(v), err
	case "bool":
		var b bool
		if err := json.Unmarshal(ro.Value, &b); err != nil {
			return 0, err
		}
		return ld.constant(Bool(b)), nil
	}
	return 0, fmt.Errorf("unknown operand type %q", ro.Type)
}

func (ld *loader) block(rb *rawBlock) ([]instr, error) {
	out := make([]instr, 0, len(rb.Stmts))
	for _, rs := range rb.Stmts {
		var s rawStmt
		if len(rs.Stmt) > 0 {
			if err := json.Unmarshal(rs.Stmt, &s); err != nil {
				return nil, fmt.Errorf("%s: %w", rs.Type, err)
			}
		}
		in, err := ld.stmt(rs.Type, &s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rs.Type, err)
		}
		out = append(out, in)
	}
	return out, nil
}

func (ld *loader) target(s *rawStmt) (int32, error) {
	if s.Target == nil || *s.Target < 0 {
		return 0, fmt.Errorf("missing target")
	}
	return ld.local(*s.Target), nil
}

func (ld *loader) stmt(typ string, s *rawStmt) (instr, error) {
	var in instr
	var err error
	ext := &instrExt{}
	switch typ {
	case "NopStmt":
		in.op = opNop
	case "ArrayAppendStmt":
		in.op = opArrayAppend
		in.a = ld.local(s.Array)
		in.x, err = ld.operand(s.Value)
	case "AssignIntStmt":
		in.op = opAssignInt
		var n int64
		if err = json.Unmarshal(s.Value, &n); err == nil {
			in.x = ld.constant(Int(n))
		}
		in.a, err = ld.target(s)
	case "AssignVarOnceStmt", "AssignVarStmt":
		in.op = opAssignVar
		if typ == "AssignVarOnceStmt" {
			in.op = opAssignVarOnce
		}
		if in.x, err = ld.operand(s.Source); err == nil {
			in.a, err = ld.target(s)
		}
	case "BlockStmt":
		in.op = opBlock
		ext.blocks, err = ld.blocks(s.Blocks)
	case "BreakStmt":
		in.op = opBreak
		if s.Index != nil {
			in.a = int32(*s.Index)
		}
		if in.a < 0 {
			err = fmt.Errorf("negative break index")
		}
	case "CallDynamicStmt":
		in.op = opCallDynamic
		in.a = ld.local(s.Result)
		if err = json.Unmarshal(s.Args, &ext.largs); err != nil {
			break
		}
		for i, l := range ext.largs {
			ext.largs[i] = ld.local(l)
		}
		var ops []json.RawMessage
		if err = json.Unmarshal(s.Path, &ops); err != nil {
			break
		}
		for _, o := range ops {
			var op operand
			if op, err = ld.operand(o); err != nil {
				break
			}
			ext.dpath = append(ext.dpath, op)
		}
	case "CallStmt":
		in.a = ld.local(s.Result)
		var ops []json.RawMessage
		if len(s.Args) > 0 {
			if err = json.Unmarshal(s.Args, &ops); err != nil {
				break
			}
		}
		for _, o := range ops {
			var op operand
			if op, err = ld.operand(o); err != nil {
				return in, err
			}
			ext.args = append(ext.args, op)
		}
		if fn, ok := ld.funcs[s.Func]; ok {
			in.op, ext.fn = opCallFunc, fn
			if len(ext.args) != len(fn.params) {
				err = fmt.Errorf("call of %s with %d args, want %d", s.Func, len(ext.args), len(fn.params))
			}
		} else if bi, ok := builtins[s.Func]; ok {
			in.op, ext.bi = opCallBuiltin, bi
			if bi.arity >= 0 && len(ext.args) != bi.arity {
				err = fmt.Errorf("call of %s with %d args, want %d", s.Func, len(ext.args), bi.arity)
			}
		} else {
			err = fmt.Errorf("unsupported builtin or unknown function %q", s.Func)
		}
	case "DotStmt":
		in.op = opDot
		if in.x, err = ld.operand(s.Source); err == nil {
			if in.y, err = ld.operand(s.Key); err == nil {
				in.a, err = ld.target(s)
			}
		}
	case "EqualStmt", "NotEqualStmt":
		in.op = opEqual
		if typ == "NotEqualStmt" {
			in.op = opNotEqual
		}
		if in.x, err = ld.operand(s.A); err == nil {
			in.y, err = ld.operand(s.B)
		}
	case "IsArrayStmt", "IsObjectStmt", "IsSetStmt":
		in.op = map[string]opcode{"IsArrayStmt": opIsArray, "IsObjectStmt": opIsObject, "IsSetStmt": opIsSet}[typ]
		in.x, err = ld.operand(s.Source)
	case "IsDefinedStmt", "IsUndefinedStmt":
		in.op = opIsDefined
		if typ == "IsUndefinedStmt" {
			in.op = opIsUndefined
		}
		var l int32
		if err = json.Unmarshal(s.Source, &l); err == nil {
			in.a = ld.local(l)
		}
	case "LenStmt":
		in.op = opLen
		if in.x, err = ld.operand(s.Source); err == nil {
			in.a, err = ld.target(s)
		}
	case "MakeArrayStmt":
		in.op = opMakeArray
		in.b = min(max(s.Capacity, 0), 1024)
		in.a, err = ld.target(s)
	case "MakeNullStmt":
		in.op = opMakeNull
		in.a, err = ld.target(s)
	case "MakeNumberIntStmt":
		in.op = opMakeNumber
		var n int64
		if err = json.Unmarshal(s.Value, &n); err == nil {
			in.x = ld.constant(Int(n))
			in.a, err = ld.target(s)
		}
	case "MakeNumberRefStmt":
		in.op = opMakeNumber
		idx := s.Index
		if idx == nil {
			idx = s.IndexOld
		}
		if idx == nil {
			err = fmt.Errorf("missing index")
			break
		}
		var sv Value
		if sv, err = ld.str(*idx); err != nil {
			break
		}
		n, ok := Number(sv.s)
		if !ok {
			err = fmt.Errorf("invalid number %q", sv.s)
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
		if s.Block == nil {
			err = fmt.Errorf("missing block")
			break
		}
		in.block, err = ld.block(s.Block)
	case "ObjectInsertOnceStmt", "ObjectInsertStmt":
		in.op = opObjectInsert
		if typ == "ObjectInsertOnceStmt" {
			in.op = opObjectInsertOnce
		}
		in.a = ld.local(s.Object)
		if in.x, err = ld.operand(s.Key); err == nil {
			in.y, err = ld.operand(s.Value)
		}
	case "ObjectMergeStmt":
		in.op = opObjectMerge
		var a, b int32
		if err = json.Unmarshal(s.A, &a); err != nil {
			break
		}
		if err = json.Unmarshal(s.B, &b); err != nil {
			break
		}
		in.b, in.c = ld.local(a), ld.local(b)
		in.a, err = ld.target(s)
	case "ResetLocalStmt":
		in.op = opResetLocal
		in.a, err = ld.target(s)
	case "ResultSetAddStmt":
		in.op = opResultSetAdd
		var l int32
		if err = json.Unmarshal(s.Value, &l); err == nil {
			in.a = ld.local(l)
		}
	case "ReturnLocalStmt":
		in.op = opReturnLocal
		var l int32
		if err = json.Unmarshal(s.Source, &l); err == nil {
			in.a = ld.local(l)
		}
	case "ScanStmt":
		in.op = opScan
		var src, key, val int32
		if err = json.Unmarshal(s.Source, &src); err != nil {
			break
		}
		if err = json.Unmarshal(s.Key, &key); err != nil {
			break
		}
		if err = json.Unmarshal(s.Value, &val); err != nil {
			break
		}
		in.a, in.b, in.c = ld.local(src), ld.local(key), ld.local(val)
		if s.Block == nil {
			err = fmt.Errorf("missing block")
			break
		}
		in.block, err = ld.block(s.Block)
	case "SetAddStmt":
		in.op = opSetAdd
		in.a = ld.local(s.Set)
		in.x, err = ld.operand(s.Value)
	case "WithStmt":
		in.op = opWith
		in.a = ld.local(s.Local)
		var path []int
		if len(s.Path) > 0 && string(s.Path) != "null" {
			if err = json.Unmarshal(s.Path, &path); err != nil {
				break
			}
		}
		for _, i := range path {
			var v Value
			if v, err = ld.str(i); err != nil {
				return in, err
			}
			ext.path = append(ext.path, v)
		}
		if in.x, err = ld.operand(s.Value); err != nil {
			break
		}
		if s.Block == nil {
			err = fmt.Errorf("missing block")
			break
		}
		in.block, err = ld.block(s.Block)
	default:
		err = fmt.Errorf("unknown statement type")
	}
	switch in.op {
	case opBlock, opCallDynamic, opCallFunc, opCallBuiltin, opWith:
		in.ext = ext
	}
	return in, err
}
