package planvm

import "strings"

// Opaque strings and observations: remembering a decision for every input
// that the plan cannot tell apart from the one evaluated.
//
// A caller marks strings of the input as opaque (Opaque): their content,
// unlike everything else of the input, may differ between two inputs that
// share a remembered decision (a path's transaction id, an invitee's user
// ID). While it evaluates, the VM records every point at which an opaque
// string's content decided anything: a lookup of it as a key (in which
// object, and what was found), an equality with another string (and the
// outcome), a call of a string predicate (startswith, endswith, contains)
// with it (and the outcome). Anything else that reads an opaque string's
// content — another builtin, a comparison by order, its length, its use as
// an object key or set element, its way into the result — makes the
// evaluation unobservable (Observations reports false), and the caller must
// then remember the decision under the whole input or not at all.
//
// Two inputs that are equal but for opaque strings, and whose opaque strings
// give the same outcome at every recorded point (Replay), make the VM take
// the same steps, every branch the same way (by induction on the steps: the
// only values that differ are opaque strings, and each use of their content
// had the same outcome), and so yield the same result.

// Opaque returns s as the opaque string number n (0 ≤ n < MaxOpaque) of an
// input (see above). It is a string like any other for everything but the
// observations.
func Opaque(s string, n int) Value {
	return Value{k: KindString, s: s, opq: uint8(n + 1)}
}

// MaxOpaque is the number of opaque strings an input may have.
const MaxOpaque = 255

// Observation is one use of an opaque string's content during an
// evaluation, and its outcome.
type Observation struct {
	kind obsKind
	arg  uint8 // the opaque string's number + 1
	pos  uint8 // obsCall: the opaque string's argument position
	res  int32 // obsLookup: 1 found, 0 not; else 0 false, 1 true, 2 undefined
	c    *composite
	val  *Value // obsLookup in an object: the member's value, which a replay's must equal
	s    string // obsEqual: the other string; obsCall: the other argument
	bi   *builtin
}

type obsKind uint8

const (
	obsLookup obsKind = iota + 1
	obsEqual
	obsCall
)

// Observations returns what the last evaluation recorded of its opaque
// strings, valid until the next Eval (strings may be views of the input:
// see Detach), and false when it used one in a way that is not recorded.
func (e *Evaluator) Observations() ([]Observation, bool) {
	return e.m.obs, !e.m.obsBad
}

// Detach returns o with its string copied, for keeping past the input's
// lifetime. An observation keeps a reference to the data object it looked
// into: data must stay the same for as long as it is replayed.
func (o Observation) Detach() Observation {
	o.s = strings.Clone(o.s)
	return o
}

// Replay reports whether opaque strings (by number) give every recorded
// outcome of obs.
func Replay(obs []Observation, opaque []string) bool {
	for i := range obs {
		o := &obs[i]
		n := int(o.arg) - 1
		if n >= len(opaque) {
			return false
		}
		s := opaque[n]
		switch o.kind {
		case obsLookup:
			j := findKey(o.c, s)
			if b2i(j >= 0) != o.res || o.val != nil && !Equal(o.c.vals[j], *o.val) {
				return false
			}
		case obsEqual:
			if b2i(s == o.s) != o.res {
				return false
			}
		case obsCall:
			var a [2]Value
			a[o.pos], a[1-o.pos] = String(s), String(o.s)
			if callOutcome(o.bi, a[:]) != o.res {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// findKey is the lookup dot does in c for string key s.
func findKey(c *composite, s string) int {
	return c.find(String(s))
}

// callOutcome calls a string predicate: 0 false, 1 true, 2 undefined.
func callOutcome(bi *builtin, a []Value) int32 {
	v, ok := bi.fn(nil, a)
	if !ok || v.k != KindBool {
		return 2
	}
	return int32(v.i)
}

// spoil marks the evaluation unobservable.
func (m *vm) spoil() { m.obsBad = true }

// observeLookup records the lookup of opaque key in src; it returns what
// lookupRef returns.
func (m *vm) observeLookup(src, key *Value) *Value {
	r := lookupRef(src, key)
	switch src.k {
	case KindObject, KindSet:
	default:
		return r // no member is looked up in a string, number or array by a string
	}
	if src.c.scratch || src.c.transient {
		// Built by this evaluation or for this input: gone or changed by
		// the time a replay would look into it.
		m.spoil()
		return r
	}
	// Another key with a member of equal content does what this one did:
	// the member's value is all the evaluation gets from the lookup (a
	// set's member is the key itself, opaque as before).
	o := Observation{kind: obsLookup, arg: key.opq, c: src.c}
	if j := src.c.find(*key); j >= 0 {
		o.res = 1
		if src.k == KindObject {
			o.val = &src.c.vals[j]
		}
	}
	m.record(o)
	return r
}

// observeEqual records the equality of a and b, one of them opaque.
func (m *vm) observeEqual(a, b *Value) bool {
	eq := equalRef(a, b)
	if a.k != b.k {
		return eq // a value equals no value of another kind, whatever its content
	}
	if a.k != KindString {
		if a.k >= KindArray && (mayHoldOpaque(a) || mayHoldOpaque(b)) {
			m.spoil() // composites holding opaque strings are compared by content
		}
		return eq
	}
	if a.opq == 0 && b.opq == 0 {
		return eq
	}
	if a.opq != 0 && b.opq != 0 {
		m.spoil()
		return eq
	}
	o, other := a, b
	if o.opq == 0 {
		o, other = b, a
	}
	m.record(Observation{kind: obsEqual, arg: o.opq, res: b2i(eq), s: other.s})
	return eq
}

// observeCall records a builtin call with args, of which some may be
// opaque or hold opaque strings; it is called only while opaque strings
// are about (m.opaque).
func (m *vm) observeCall(bi *builtin, args []Value, v Value, ok bool) {
	pos := -1
	for i := range args {
		a := &args[i]
		switch {
		case i < 8 && bi.passes&(1<<i) != 0:
		case a.opq != 0:
			if pos >= 0 {
				m.spoil()
				return
			}
			pos = i
		case mayHoldOpaque(a):
			m.spoil()
			return
		}
	}
	if pos < 0 {
		return
	}
	if !bi.predicate || len(args) != 2 || args[1-pos].k != KindString {
		m.spoil()
		return
	}
	res := int32(2)
	if ok && v.k == KindBool {
		res = int32(v.i)
	}
	m.record(Observation{kind: obsCall, arg: args[pos].opq, pos: uint8(pos), res: res, s: args[1-pos].s, bi: bi})
}

func (m *vm) record(o Observation) {
	if len(m.obs) >= maxObservations {
		m.spoil()
		return
	}
	m.obs = append(m.obs, o)
}

// maxObservations bounds what one evaluation records.
const maxObservations = 32

// mayHoldOpaque reports whether v is or may hold an opaque string: it
// looks through at most opaqueWalk values and says true when it stops
// early.
func mayHoldOpaque(v *Value) bool {
	budget := opaqueWalk
	return holdsOpaque(v, &budget)
}

const opaqueWalk = 256

func holdsOpaque(v *Value, budget *int) bool {
	if *budget--; *budget < 0 {
		return true
	}
	switch v.k {
	case KindString:
		return v.opq != 0
	case KindArray, KindObject, KindSet:
		for i := range v.c.elems {
			if holdsOpaque(&v.c.elems[i], budget) {
				return true
			}
		}
		for i := range v.c.vals {
			if holdsOpaque(&v.c.vals[i], budget) {
				return true
			}
		}
	}
	return false
}

// Exact appends to dst the observations that hold for exactly the opaque
// strings given: for an evaluation that used them in a way that is not
// recorded (Observations reports false), whose result is then a function
// of their whole content.
func Exact(dst []Observation, opaque []string) []Observation {
	for i, s := range opaque {
		dst = append(dst, Observation{kind: obsEqual, arg: uint8(i + 1), res: 1, s: s})
	}
	return dst
}
