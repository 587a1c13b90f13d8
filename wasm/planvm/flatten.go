package planvm

import "slices"

// Flat code. OPA's plans nest blocks (BlockStmt, NotStmt) and leave them
// with "break n" and undefined statements; run as written, every nested
// block is a recursive call of exec, and each level translates the break
// count it receives. In wasm a call of exec is the most expensive thing a
// statement can do, so the loader resolves the nesting once: the blocks of
// a plan or function become one instruction stream, every statement knows
// where execution continues when it is undefined (its block's exit), and
// BreakStmt, the end of a NotStmt's block and the end of a block become
// jumps. Only the bodies of ScanStmt and WithStmt, which run repeatedly or
// with a changed local, remain streams of their own.
//
// Where a block is left to:
//   - a block inside a BlockStmt: the next block of the statement, after
//     the last one the statement after the BlockStmt;
//   - the block of a NotStmt: the statement after the NotStmt (the negated
//     block was undefined, so the NotStmt holds); when the block runs to
//     its end, the NotStmt is undefined and its own block is left;
//   - a top-level block of a plan or function: the next top-level block;
//   - the body of a ScanStmt or WithStmt: exec returns 0, and a break
//     further out returns its remaining count, as the body's block did.
//
// "break n" in a block nested d levels deep leaves the block n levels up,
// i.e. continues at that block's exit; breaking out of a top-level block
// behaves like leaving it, as it did when the loop over top-level blocks
// ignored the count.
//
// Step counts are those of the nested form: a BlockStmt or NotStmt counts
// one step, added to the next statement emitted (the one that runs right
// after it), so the step limit and the cost budgets measured with it are
// unchanged.

// target is a position in the stream (>= 0; the stream's length ends it)
// or, in a body stream, ^n: return n from exec.
type target int32

// breakTarget is where "break n" continues, from a block whose enclosing
// blocks (itself last) have exits.
func breakTarget(exits []target, inBody bool, n int) target {
	d := len(exits) - 1
	switch {
	case n <= d:
		return exits[d-n]
	case inBody:
		return ^target(n - d)
	default:
		return exits[0]
	}
}

type flattener struct {
	code   []instr
	labels []int32 // position of each label; targets are labels until resolve
	pend   int     // steps of BlockStmt/NotStmt not yet added to a statement
	inBody bool
	nslots int32 // frame size, grown by inlined functions
	inline int32 // slots added by inlining
	// while a function is inlined: its first slot, and where and in which
	// slot it returns
	off, retSlot int32
	ret          target
	inlining     []*function
}

// flatten turns the top-level blocks of a plan or function (body false),
// or the one block of a ScanStmt or WithStmt (body true), into a stream.
// nslots is the frame size, and the result's the size with the frames of
// inlined functions.
func flatten(blocks [][]instr, body bool, nslots int) ([]instr, int) {
	f := &flattener{inBody: body, nslots: int32(nslots)}
	if body {
		f.block(blocks[0], []target{^target(0)})
	} else {
		f.top(blocks)
	}
	f.flush()
	f.resolve()
	thread(f.code)
	return f.code, int(f.nslots)
}

func (f *flattener) top(blocks [][]instr) {
	for _, b := range blocks {
		next := f.label()
		f.block(b, []target{next})
		f.place(next)
	}
}

// Inlining. A call of a small function without CallDynamicStmt, ScanStmt
// and WithStmt is replaced by its statements, on slots of its own appended
// to the caller's frame: parameters are assigned, ReturnLocal jumps to the
// end, and the result is checked and assigned as CallStmt did. The slots
// start undefined, as a new frame did, because a frame is zero when it is
// allocated and a stream only jumps forward, so every statement of it runs
// at most once per frame; a ScanStmt or WithStmt body runs repeatedly on
// the same frame, so nothing is inlined into one. Calls in an inlined
// function are inlined in turn, except recursive ones. Steps are counted as
// before (the CallStmt counts one); inlined calls do not count towards the
// depth limit.
const (
	inlineMaxSlots = 32  // per function
	inlineMaxAdded = 64  // per caller
	inlineMaxStmts = 256 // per function, bounding the code a plan can grow to
)

func (f *flattener) canInline(fn *function) bool {
	return !f.inBody && fn.tree != nil && fn.tslots <= inlineMaxSlots &&
		f.inline+int32(fn.tslots) <= inlineMaxAdded && !slices.Contains(f.inlining, fn) &&
		simple(fn.tree, inlineMaxStmts) >= 0
}

// simple returns how many of n statements are left after blocks, or -1
// when they are more or include a CallDynamicStmt, ScanStmt or WithStmt.
func simple(blocks [][]instr, n int) int {
	for _, b := range blocks {
		for i := range b {
			if n--; n < 0 {
				return -1
			}
			switch s := &b[i]; s.op {
			case opCallDynamic, opScan, opWith:
				return -1
			case opBlock:
				n = simple(s.ext.blocks, n)
			case opNot:
				n = simple([][]instr{s.ext.block}, n)
			}
			if n < 0 {
				return -1
			}
		}
	}
	return n
}

func (f *flattener) inlineCall(s instr, exits []target) {
	fn := s.ext.fn
	base := f.nslots
	f.nslots += int32(fn.tslots)
	f.inline += int32(fn.tslots)
	f.structural() // the CallStmt's step
	for j, p := range fn.params {
		f.emit(instr{op: opAssignVar, a: base + p, x: s.ext.args[j], exit: ^target(0)}, 0)
	}
	off, retSlot, ret := f.off, f.retSlot, f.ret
	f.off, f.retSlot, f.ret = base, base+fn.ret, f.label()
	f.inlining = append(f.inlining, fn)
	f.top(fn.tree)
	f.place(f.ret)
	f.inlining = f.inlining[:len(f.inlining)-1]
	f.off, f.retSlot, f.ret = off, retSlot, ret
	d := len(exits) - 1
	f.emit(instr{op: opIsDefined, a: base + fn.ret, exit: exits[d]}, 0)
	f.emit(instr{op: opAssignVar, a: s.a, x: operand(base + fn.ret), exit: exits[d]}, 0)
}

// relocate moves the locals of an inlined statement to its slots. Fields
// a statement does not use are moved too; they are never read.
func (f *flattener) relocate(s *instr) {
	o := f.off
	if s.op != opBreak {
		s.a += o
	}
	if s.op == opObjectMerge {
		s.b += o
		s.c += o
	}
	if s.x >= 0 {
		s.x += operand(o)
	}
	if s.y >= 0 {
		s.y += operand(o)
	}
	if s.op == opCallBuiltin || s.op == opCallFunc {
		ext := *s.ext
		ext.args = slices.Clone(ext.args)
		for j, a := range ext.args {
			if a >= 0 {
				ext.args[j] = a + operand(o)
			}
		}
		s.ext = &ext
	}
}

func (f *flattener) label() target {
	f.labels = append(f.labels, -1)
	return target(len(f.labels) - 1)
}

// place puts label l at the next statement. Pending steps belong to the
// statements that lead there, not to jumps to l: they get a Nop of their own.
func (f *flattener) place(l target) {
	f.flush()
	f.labels[l] = int32(len(f.code))
}

func (f *flattener) flush() {
	if f.pend > 0 {
		f.emit(instr{op: opNop, exit: ^target(0)}, 0)
	}
}

// structural counts the step of a BlockStmt or NotStmt.
func (f *flattener) structural() {
	if f.pend == 254 {
		f.flush()
	}
	f.pend++
}

func (f *flattener) emit(in instr, own int) {
	in.steps = uint8(own + f.pend)
	f.pend = 0
	f.code = append(f.code, in)
}

// block emits the statements of one block; exits are the exits of the
// enclosing blocks, this block's last.
func (f *flattener) block(b []instr, exits []target) {
	d := len(exits) - 1
	exits = exits[: d+1 : d+1] // appends below copy
	for _, s := range b {
		if f.off != 0 {
			f.relocate(&s)
		}
		switch s.op {
		case opBlock:
			f.structural()
			subs := s.ext.blocks
			end := f.label()
			for i, sb := range subs {
				next := end
				if i < len(subs)-1 {
					next = f.label()
				}
				f.block(sb, append(exits, next))
				if next != end {
					f.place(next)
				}
			}
			f.place(end)
		case opNot:
			f.structural()
			after := f.label()
			f.block(s.ext.block, append(exits, after))
			f.emit(instr{op: opJump, exit: exits[d]}, 0)
			f.place(after)
		case opBreak:
			f.emit(instr{op: opJump, exit: breakTarget(exits, f.inBody, int(s.a))}, 1)
		case opReturnLocal:
			if f.off == 0 {
				s.exit = exits[d]
				f.emit(s, 1)
				break
			}
			own := 1
			if s.a != f.retSlot {
				f.emit(instr{op: opAssignVar, a: f.retSlot, x: operand(s.a), exit: ^target(0)}, 1)
				own = 0
			}
			f.emit(instr{op: opJump, exit: f.ret}, own)
		case opCallFunc:
			if f.canInline(s.ext.fn) {
				f.inlineCall(s, exits)
				break
			}
			s.exit = exits[d]
			f.emit(s, 1)
		case opScan, opWith, opCallDynamic:
			if s.op != opCallDynamic {
				s.ext.body, _ = flatten([][]instr{s.ext.block}, true, 0)
			}
			s.ext.exits, s.ext.inBody = slices.Clone(exits), f.inBody
			s.exit = exits[d]
			f.emit(s, 1)
		default:
			s.exit = exits[d]
			f.emit(s, 1)
		}
	}
}

// resolve replaces labels by positions.
func (f *flattener) resolve() {
	at := func(t target) target {
		if t < 0 {
			return t
		}
		return target(f.labels[t])
	}
	for i := range f.code {
		in := &f.code[i]
		in.exit = at(in.exit)
		if in.ext != nil {
			for j, t := range in.ext.exits {
				in.ext.exits[j] = at(t)
			}
		}
	}
}

// thread lets exits skip statements whose outcome is known on that path:
// jumps and Nops, and the else-chains of OPA's plans, where a failed
// IsUndefined x continues at another IsUndefined x (certain to fail too)
// or an IsDefined x (certain to hold). The skipped statements' steps are
// counted on the way (instr.skipped); a thread only ends at a statement,
// whose step check then sees them.
func thread(code []instr) {
	for i := range code {
		in := &code[i]
		t, skipped := in.exit, 0
		for t >= 0 && int(t) < len(code) {
			next, s := t, &code[t]
			switch {
			case s.op == opJump:
				next = s.exit
			case s.op == opNop:
				next = t + 1
			case (in.op == opIsUndefined || in.op == opIsDefined) && s.a == in.a && (s.op == opIsUndefined || s.op == opIsDefined):
				if s.op == in.op {
					next = s.exit // fails again
				} else {
					next = t + 1 // holds
				}
			}
			if next == t || next < 0 || int(next) >= len(code) || skipped+int(s.steps) > 255 {
				break
			}
			skipped += int(s.steps)
			t = next
		}
		in.exit, in.skipped = t, uint8(skipped)
	}
}
