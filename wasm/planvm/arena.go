package planvm

// arena holds the composites (and their member storage) that the plan's
// MakeObject, MakeSet and MakeArray statements build during one evaluation.
// It is reset at the start of the next evaluation with the same vm, so a
// proxy decision allocates nothing on the heap for the objects it builds.
// Only Evaluator uses it (its results are views, valid until its next
// Eval); Program.Eval builds on the heap, as its results belong to the
// caller. Copying a result out of the arena instead measured no faster than
// building it on the heap (the decision's copy costs what its build did).
//
// Storage comes in fixed chunks that are never moved, so pointers handed
// out stay valid until reset. Slices are handed out with their capacity
// capped: a statement that outgrows its size hint appends onto the heap,
// never into a neighbour's storage.
type arena struct {
	comps  [][]composite
	ci, cj int // next composite: comps[ci][cj]
	vals   [][]Value
	vi, vj int // next value: vals[vi][vj]
}

const (
	arenaComps  = 32
	arenaValues = 256
	arenaKeep   = 8 // chunks of each kind kept across evaluations
)

// composite returns a zeroed composite marked as arena storage.
func (a *arena) composite() *composite {
	if a.ci == len(a.comps) {
		a.comps = append(a.comps, make([]composite, arenaComps))
	}
	c := &a.comps[a.ci][a.cj]
	if a.cj++; a.cj == arenaComps {
		a.ci, a.cj = a.ci+1, 0
	}
	c.scratch = true
	return c
}

// values returns zeroed storage for n values (len n, cap n).
func (a *arena) values(n int) []Value {
	if n > arenaValues/4 {
		return make([]Value, n)
	}
	if a.vj+n > arenaValues {
		a.vi, a.vj = a.vi+1, 0
	}
	if a.vi == len(a.vals) {
		a.vals = append(a.vals, make([]Value, arenaValues))
	}
	s := a.vals[a.vi][a.vj : a.vj+n : a.vj+n]
	a.vj += n
	return s
}

// reset zeroes what the last evaluation used, dropping its references.
func (a *arena) reset() {
	for i := 0; i <= a.ci && i < len(a.comps); i++ {
		n := arenaComps
		if i == a.ci {
			n = a.cj
		}
		cs := a.comps[i][:n]
		for j := range cs {
			cs[j].reset()
		}
	}
	for i := 0; i <= a.vi && i < len(a.vals); i++ {
		n := arenaValues
		if i == a.vi {
			n = a.vj
		}
		if n > 0 { // clear is calls and memory.fill in wasm, even when empty
			clear(a.vals[i][:n])
		}
	}
	a.ci, a.cj, a.vi, a.vj = 0, 0, 0, 0
	// An unusual evaluation (a comprehension over a large input) may have
	// grown the arena; keep only what typical decisions need.
	if len(a.comps) > arenaKeep {
		clear(a.comps[arenaKeep:])
		a.comps = a.comps[:arenaKeep]
	}
	if len(a.vals) > arenaKeep {
		clear(a.vals[arenaKeep:])
		a.vals = a.vals[:arenaKeep]
	}
}

// reset zeroes c without an atomic store: arena composites are private to
// their Evaluator.
func (c *composite) reset() { *c = composite{} }

func (a *arena) object(hint int) Value {
	c := a.composite()
	if hint > 0 {
		kv := a.values(2 * hint)
		c.elems, c.vals = kv[:0:hint], kv[hint:hint:2*hint]
	}
	return Value{k: KindObject, c: c}
}

func (a *arena) set(hint int) Value {
	c := a.composite()
	if hint > 0 {
		c.elems = a.values(hint)[:0:hint]
	}
	return Value{k: KindSet, c: c}
}

func (a *arena) array(hint int) Value {
	c := a.composite()
	if hint > 0 {
		c.elems = a.values(hint)[:0:hint]
	}
	return Value{k: KindArray, c: c}
}
