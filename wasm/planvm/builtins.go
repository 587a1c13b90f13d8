package planvm

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// builtin is one implemented OPA builtin. fn returns ok=false when the
// result is undefined — OPA's non-strict behaviour for type errors and
// other builtin errors.
type builtin struct {
	arity int // -1: not checked
	fn    func(m *vm, a []Value) (Value, bool)
	// predicate: a function of two strings to a boolean that uses no vm,
	// which observations may call again (observe.go).
	predicate bool
	// passes: the arguments (a bit per position) that may be or hold
	// opaque strings whose content the builtin does not read, only hands
	// back (observe.go).
	passes uint8
}

var builtins map[string]*builtin

// Builtins returns the names of the implemented builtins, sorted. A policy
// that calls any other builtin cannot be loaded.
func Builtins() []string {
	out := make([]string, 0, len(builtins))
	for k := range builtins {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func reg(name string, arity int, fn func(m *vm, a []Value) (Value, bool)) {
	builtins[name] = &builtin{arity: arity, fn: fn}
}

func init() {
	builtins = map[string]*builtin{}
	// comparison (any types, OPA's total order)
	cmpFn := func(pred func(int) bool) func(*vm, []Value) (Value, bool) {
		return func(_ *vm, a []Value) (Value, bool) { return Bool(pred(Compare(a[0], a[1]))), true }
	}
	reg("equal", 2, func(_ *vm, a []Value) (Value, bool) { return Bool(Equal(a[0], a[1])), true })
	reg("neq", 2, func(_ *vm, a []Value) (Value, bool) { return Bool(!Equal(a[0], a[1])), true })
	reg("lt", 2, cmpFn(func(c int) bool { return c < 0 }))
	reg("lte", 2, cmpFn(func(c int) bool { return c <= 0 }))
	reg("gt", 2, cmpFn(func(c int) bool { return c > 0 }))
	reg("gte", 2, cmpFn(func(c int) bool { return c >= 0 }))

	// arithmetic
	reg("plus", 2, arith(opAdd))
	reg("mul", 2, arith(opMul))
	reg("div", 2, arith(opDiv))
	reg("rem", 2, arith(opRem))
	reg("minus", 2, func(m *vm, a []Value) (Value, bool) {
		if a[0].k == KindSet && a[1].k == KindSet {
			return setDiff(a[0], a[1]), true
		}
		return arith(opSub)(m, a)
	})
	reg("abs", 1, unary(func(x int64) int64 { return max(x, -x) }, func(f *big.Float) *big.Float { return f.Abs(f) }))
	reg("round", 1, unary(nil, func(f *big.Float) *big.Float {
		half := big.NewFloat(0.5)
		var i *big.Int
		if f.Signbit() {
			i, _ = new(big.Float).Sub(f, half).Int(nil)
		} else {
			i, _ = new(big.Float).Add(f, half).Int(nil)
		}
		return new(big.Float).SetInt(i)
	}))
	reg("ceil", 1, unary(nil, func(f *big.Float) *big.Float {
		i, _ := f.Int(nil)
		r := new(big.Float).SetInt(i)
		if r.Signbit() || f.Cmp(r) == 0 {
			return r
		}
		return r.Add(r, big.NewFloat(1))
	}))
	reg("floor", 1, unary(nil, func(f *big.Float) *big.Float {
		i, _ := f.Int(nil)
		r := new(big.Float).SetInt(i)
		if !r.Signbit() || f.Cmp(r) == 0 {
			return r
		}
		return r.Sub(r, big.NewFloat(1))
	}))
	reg("numbers.range", 2, biRange)

	// aggregates
	reg("count", 1, func(_ *vm, a []Value) (Value, bool) {
		switch a[0].k {
		case KindArray, KindObject, KindSet, KindString:
			return Int(int64(a[0].Len())), true
		}
		return Value{}, false
	})
	reg("sum", 1, func(_ *vm, a []Value) (Value, bool) { return fold(a[0], 0, opAdd) })
	reg("product", 1, func(_ *vm, a []Value) (Value, bool) { return fold(a[0], 1, opMul) })
	reg("max", 1, func(_ *vm, a []Value) (Value, bool) { return extreme(a[0], 1) })
	reg("min", 1, func(_ *vm, a []Value) (Value, bool) { return extreme(a[0], -1) })
	reg("sort", 1, func(_ *vm, a []Value) (Value, bool) {
		es, ok := elements(a[0])
		if !ok {
			return Value{}, false
		}
		es = slices.Clone(es)
		slices.SortStableFunc(es, Compare)
		return arrayOf(es), true
	})
	reg("internal.member_2", 2, func(_ *vm, a []Value) (Value, bool) {
		x, c := a[0], a[1]
		switch c.k {
		case KindSet:
			return Bool(c.c.find(x) >= 0), true
		case KindArray, KindObject:
			src := c.c.elems
			if c.k == KindObject {
				src = c.c.vals
			}
			for _, e := range src {
				if Equal(e, x) {
					return Bool(true), true
				}
			}
		}
		return Bool(false), true
	})
	reg("internal.member_3", 3, func(_ *vm, a []Value) (Value, bool) {
		k, v, c := a[0], a[1], a[2]
		switch c.k {
		case KindSet:
			return Bool(c.c.find(k) >= 0 && Equal(k, v)), true
		case KindArray, KindObject:
			got, ok := c.Lookup(k)
			return Bool(ok && Equal(got, v)), true
		}
		return Bool(false), true
	})

	// sets
	reg("and", 2, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindSet || a[1].k != KindSet {
			return Value{}, false
		}
		return setAnd(a[0], a[1]), true
	})
	reg("or", 2, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindSet || a[1].k != KindSet {
			return Value{}, false
		}
		return setOr(a[0], a[1]), true
	})
	reg("intersection", 1, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindSet {
			return Value{}, false
		}
		var out Value
		for i, s := range a[0].c.elems {
			if s.k != KindSet {
				return Value{}, false
			}
			if i == 0 {
				out = s
			} else {
				out = setAnd(out, s)
			}
		}
		if !out.IsDefined() {
			out = emptySet(0)
		}
		return out, true
	})
	reg("union", 1, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindSet {
			return Value{}, false
		}
		out := emptySet(0)
		for _, s := range a[0].c.elems {
			if s.k != KindSet {
				return Value{}, false
			}
			for _, e := range s.c.elems {
				out.c.setAdd(e)
			}
		}
		return out, true
	})

	// types
	for name, k := range map[string]Kind{"is_string": KindString, "is_number": KindNumber, "is_boolean": KindBool,
		"is_array": KindArray, "is_set": KindSet, "is_object": KindObject, "is_null": KindNull} {
		k := k
		reg(name, 1, func(_ *vm, a []Value) (Value, bool) { return Bool(a[0].k == k), true })
	}
	reg("type_name", 1, func(_ *vm, a []Value) (Value, bool) { return typeNames[a[0].k], true })

	registerStrings()
	registerObjects()
	reg("time.now_ns", 0, func(m *vm, _ []Value) (Value, bool) { return Int(m.nowNS()), true })
}

var typeNames = [...]Value{KindNull: String("null"), KindBool: String("boolean"), KindNumber: String("number"),
	KindString: String("string"), KindArray: String("array"), KindObject: String("object"), KindSet: String("set")}

// elements returns the members of an array or set (sets in sorted order).
func elements(v Value) ([]Value, bool) {
	switch v.k {
	case KindArray:
		return v.c.elems, true
	case KindSet:
		order := v.c.sortedOrder()
		out := make([]Value, len(order))
		for i, j := range order {
			out[i] = v.c.elems[j]
		}
		return out, true
	}
	return nil, false
}

func extreme(v Value, sign int) (Value, bool) {
	es, ok := elements(v)
	if !ok || len(es) == 0 {
		return Value{}, false
	}
	best := es[0]
	for _, e := range es[1:] {
		if Compare(e, best)*sign > 0 {
			best = e
		}
	}
	return best, true
}

func setDiff(a, b Value) Value {
	out := emptySet(0)
	for _, e := range a.c.elems {
		if b.c.find(e) < 0 {
			out.c.setAdd(e)
		}
	}
	return out
}

func setAnd(a, b Value) Value {
	if len(b.c.elems) < len(a.c.elems) {
		a, b = b, a
	}
	out := emptySet(0)
	for _, e := range a.c.elems {
		if b.c.find(e) >= 0 {
			out.c.setAdd(e)
		}
	}
	return out
}

func setOr(a, b Value) Value {
	out := emptySet(len(a.c.elems) + len(b.c.elems))
	for _, e := range a.c.elems {
		out.c.setAdd(e)
	}
	for _, e := range b.c.elems {
		out.c.setAdd(e)
	}
	return out
}

// numbers.range: integers from a to b inclusive, either direction, bounded.
const maxRange = 100_000

func biRange(_ *vm, a []Value) (Value, bool) {
	x, ok1 := intOperand(a[0])
	y, ok2 := intOperand(a[1])
	if !ok1 || !ok2 {
		return Value{}, false
	}
	n := y - x
	if n < 0 {
		n = -n
	}
	if n >= maxRange {
		return Value{}, false
	}
	out := make([]Value, 0, n+1)
	step := int64(1)
	if y < x {
		step = -1
	}
	for i := x; ; i += step {
		out = append(out, Int(i))
		if i == y {
			break
		}
	}
	return arrayOf(out), true
}

// intOperand accepts integral numbers (1.0 included, as OPA does).
func intOperand(v Value) (int64, bool) {
	if v.k != KindNumber {
		return 0, false
	}
	return v.AsInt()
}

func strOperand(v Value) (string, bool) { return v.s, v.k == KindString }

// --- strings ---

func str1(f func(string) string) func(*vm, []Value) (Value, bool) {
	return func(_ *vm, a []Value) (Value, bool) {
		s, ok := strOperand(a[0])
		if !ok {
			return Value{}, false
		}
		return String(f(s)), true
	}
}

func str2(f func(a, b string) Value) func(*vm, []Value) (Value, bool) {
	return func(_ *vm, a []Value) (Value, bool) {
		x, ok1 := strOperand(a[0])
		y, ok2 := strOperand(a[1])
		if !ok1 || !ok2 {
			return Value{}, false
		}
		return f(x, y), true
	}
}

func registerStrings() {
	reg("startswith", 2, str2(func(s, p string) Value { return Bool(strings.HasPrefix(s, p)) }))
	reg("endswith", 2, str2(func(s, p string) Value { return Bool(strings.HasSuffix(s, p)) }))
	reg("contains", 2, str2(func(s, p string) Value { return Bool(strings.Contains(s, p)) }))
	for _, name := range []string{"startswith", "endswith", "contains"} {
		builtins[name].predicate = true
	}
	// object.get looks its key up among the object's keys (never opaque:
	// an opaque object key spoils the evaluation) and returns a member or
	// the default as they are.
	reg("lower", 1, str1(strings.ToLower))
	reg("upper", 1, str1(strings.ToUpper))
	reg("trim_space", 1, str1(func(s string) string { return strings.TrimSpace(s) }))
	reg("trim", 2, str2(func(s, c string) Value { return String(strings.Trim(s, c)) }))
	reg("trim_left", 2, str2(func(s, c string) Value { return String(strings.TrimLeft(s, c)) }))
	reg("trim_right", 2, str2(func(s, c string) Value { return String(strings.TrimRight(s, c)) }))
	reg("trim_prefix", 2, str2(func(s, p string) Value { return String(strings.TrimPrefix(s, p)) }))
	reg("trim_suffix", 2, str2(func(s, p string) Value { return String(strings.TrimSuffix(s, p)) }))
	reg("split", 2, str2(func(s, d string) Value {
		parts := strings.Split(s, d)
		out := make([]Value, len(parts))
		for i, p := range parts {
			out[i] = String(p)
		}
		return arrayOf(out)
	}))
	reg("indexof", 2, func(_ *vm, a []Value) (Value, bool) {
		s, ok1 := strOperand(a[0])
		sub, ok2 := strOperand(a[1])
		if !ok1 || !ok2 || sub == "" {
			return Value{}, false
		}
		i := strings.Index(s, sub)
		if i < 0 {
			return Int(-1), true
		}
		return Int(int64(utf8.RuneCountInString(s[:i]))), true
	})
	reg("substring", 3, func(_ *vm, a []Value) (Value, bool) {
		s, ok := strOperand(a[0])
		start, ok1 := intOperand(a[1])
		length, ok2 := intOperand(a[2])
		if !ok || !ok1 || !ok2 || start < 0 {
			return Value{}, false
		}
		rs := []rune(s)
		if start >= int64(len(rs)) {
			return String(""), true
		}
		end := int64(len(rs))
		if length >= 0 && start+length < end {
			end = start + length
		}
		return String(string(rs[start:end])), true
	})
	reg("replace", 3, func(_ *vm, a []Value) (Value, bool) {
		s, ok := strOperand(a[0])
		o, ok1 := strOperand(a[1])
		n, ok2 := strOperand(a[2])
		if !ok || !ok1 || !ok2 {
			return Value{}, false
		}
		return String(strings.ReplaceAll(s, o, n)), true
	})
	reg("strings.replace_n", 2, func(_ *vm, a []Value) (Value, bool) {
		pats, s := a[0], a[1]
		str, ok := strOperand(s)
		if pats.k != KindObject || !ok {
			return Value{}, false
		}
		var oldnew []string
		for _, j := range pats.c.sortedOrder() {
			k, v := pats.c.elems[j], pats.c.vals[j]
			if k.k != KindString || v.k != KindString {
				return Value{}, false
			}
			oldnew = append(oldnew, k.s, v.s)
		}
		return String(strings.NewReplacer(oldnew...).Replace(str)), true
	})
	reg("concat", 2, func(_ *vm, a []Value) (Value, bool) {
		d, ok := strOperand(a[0])
		es, ok2 := elements(a[1])
		if !ok || !ok2 {
			return Value{}, false
		}
		var sb strings.Builder
		for i, e := range es {
			if e.k != KindString {
				return Value{}, false
			}
			if i > 0 {
				sb.WriteString(d)
			}
			sb.WriteString(e.s)
		}
		return String(sb.String()), true
	})
	reg("sprintf", 2, biSprintf)
	reg("format_int", 2, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindNumber {
			return Value{}, false
		}
		base, ok := intOperand(a[1])
		if !ok || (base != 2 && base != 8 && base != 10 && base != 16) || a[1].text {
			return Value{}, false
		}
		if !a[0].text {
			return String(strconv.FormatInt(a[0].i, int(base))), true
		}
		if i, ok := new(big.Int).SetString(a[0].s, 10); ok {
			return String(i.Text(int(base))), true
		}
		f, ok := toFloat(a[0])
		if !ok {
			return Value{}, false
		}
		i, _ := f.Int(nil)
		return String(i.Text(int(base))), true
	})
	reg("to_number", 1, func(_ *vm, a []Value) (Value, bool) {
		switch v := a[0]; v.k {
		case KindNull:
			return Int(0), true
		case KindBool:
			return Int(v.i), true
		case KindNumber:
			return v, true
		case KindString:
			l := strings.ToLower(strings.TrimLeft(v.s, "+-"))
			if l == "inf" || l == "infinity" || l == "nan" {
				return Value{}, false
			}
			if _, err := strconv.ParseFloat(v.s, 64); err != nil {
				return Value{}, false
			}
			if n, ok := Number(v.s); ok {
				return n, true
			}
			// Forms ParseFloat accepts but JSON does not (e.g. "+1", ".5",
			// "1_000", hex): normalise through big.Float.
			f, ok := new(big.Float).SetString(v.s)
			if !ok {
				return Value{}, false
			}
			return floatToNumber(f), true
		}
		return Value{}, false
	})
}

func biSprintf(_ *vm, a []Value) (Value, bool) {
	f, ok := strOperand(a[0])
	if !ok || a[1].k != KindArray {
		return Value{}, false
	}
	args := make([]any, len(a[1].c.elems))
	for i, e := range a[1].c.elems {
		switch e.k {
		case KindNumber:
			switch {
			case !e.text:
				args[i] = e.i
			case strings.ContainsAny(e.s, ".eE"):
				if x, err := strconv.ParseFloat(e.s, 64); err == nil {
					args[i] = x
				} else {
					args[i] = e.s
				}
			default:
				if b, ok := new(big.Int).SetString(e.s, 10); ok {
					args[i] = b
				} else {
					args[i] = e.s
				}
			}
		case KindString:
			args[i] = e.s
		default:
			args[i] = regoString(e)
		}
	}
	return String(fmt.Sprintf(f, args...)), true
}

// regoString renders a value the way OPA prints terms (used by sprintf for
// composite arguments).
func regoString(v Value) string {
	var sb strings.Builder
	writeRego(&sb, v)
	return sb.String()
}

func writeRego(sb *strings.Builder, v Value) {
	switch v.k {
	case KindNull:
		sb.WriteString("null")
	case KindBool:
		if v.i != 0 {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case KindNumber:
		t, _ := v.NumberText()
		sb.WriteString(t)
	case KindString:
		sb.WriteString(strconv.Quote(v.s))
	case KindArray:
		sb.WriteByte('[')
		for i, e := range v.c.elems {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRego(sb, e)
		}
		sb.WriteByte(']')
	case KindSet:
		if len(v.c.elems) == 0 {
			sb.WriteString("set()")
			return
		}
		sb.WriteByte('{')
		for i, j := range v.c.sortedOrder() {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRego(sb, v.c.elems[j])
		}
		sb.WriteByte('}')
	case KindObject:
		sb.WriteByte('{')
		for i, j := range v.c.sortedOrder() {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRego(sb, v.c.elems[j])
			sb.WriteString(": ")
			writeRego(sb, v.c.vals[j])
		}
		sb.WriteByte('}')
	}
}

// --- objects and arrays ---

func registerObjects() {
	reg("object.get", 3, func(_ *vm, a []Value) (Value, bool) {
		obj, path, def := a[0], a[1], a[2]
		if obj.k != KindObject {
			return Value{}, false
		}
		if path.k != KindArray {
			if v, ok := obj.Lookup(path); ok {
				return v, true
			}
			return def, true
		}
		cur := obj
		for _, k := range path.c.elems {
			v, ok := cur.Lookup(k)
			if !ok {
				return def, true
			}
			cur = v
		}
		return cur, true
	})
	builtins["object.get"].passes = 1<<0 | 1<<2
	reg("object.keys", 1, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindObject {
			return Value{}, false
		}
		out := emptySet(len(a[0].c.elems))
		for _, k := range a[0].c.elems {
			out.c.setAdd(k)
		}
		return out, true
	})
	keySet := func(v Value) (Value, bool) {
		switch v.k {
		case KindSet:
			return v, true
		case KindArray:
			return NewSet(v.c.elems...), true
		case KindObject:
			s := emptySet(len(v.c.elems))
			for _, k := range v.c.elems {
				s.c.setAdd(k)
			}
			return s, true
		}
		return Value{}, false
	}
	reg("object.remove", 2, func(_ *vm, a []Value) (Value, bool) {
		ks, ok := keySet(a[1])
		if a[0].k != KindObject || !ok {
			return Value{}, false
		}
		out := emptyObject(len(a[0].c.elems))
		for i, k := range a[0].c.elems {
			if ks.c.find(k) < 0 {
				out.c.append(k, a[0].c.vals[i], true)
			}
		}
		return out, true
	})
	reg("object.filter", 2, func(_ *vm, a []Value) (Value, bool) {
		ks, ok := keySet(a[1])
		if a[0].k != KindObject || !ok {
			return Value{}, false
		}
		out := emptyObject(0)
		for i, k := range a[0].c.elems {
			if ks.c.find(k) >= 0 {
				out.c.append(k, a[0].c.vals[i], true)
			}
		}
		return out, true
	})
	reg("object.union", 2, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindObject || a[1].k != KindObject {
			return Value{}, false
		}
		return unionObjects(a[0], a[1]), true
	})
	reg("array.concat", 2, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindArray || a[1].k != KindArray {
			return Value{}, false
		}
		out := make([]Value, 0, len(a[0].c.elems)+len(a[1].c.elems))
		out = append(append(out, a[0].c.elems...), a[1].c.elems...)
		return arrayOf(out), true
	})
	reg("array.slice", 3, func(_ *vm, a []Value) (Value, bool) {
		start, ok1 := intOperand(a[1])
		stop, ok2 := intOperand(a[2])
		if a[0].k != KindArray || !ok1 || !ok2 {
			return Value{}, false
		}
		l := int64(len(a[0].c.elems))
		stop = min(max(stop, 0), l)
		start = min(max(start, 0), stop)
		return arrayOf(slices.Clone(a[0].c.elems[start:stop])), true
	})
	reg("array.reverse", 1, func(_ *vm, a []Value) (Value, bool) {
		if a[0].k != KindArray {
			return Value{}, false
		}
		out := slices.Clone(a[0].c.elems)
		slices.Reverse(out)
		return arrayOf(out), true
	})
}

// unionObjects merges b into a recursively; b wins on conflicts.
func unionObjects(a, b Value) Value {
	out := shallowCopyObject(a)
	for i, k := range b.c.elems {
		bv := b.c.vals[i]
		if j := out.c.find(k); j >= 0 {
			av := out.c.vals[j]
			if av.k == KindObject && bv.k == KindObject {
				out.c.vals[j] = unionObjects(av, bv)
			} else {
				out.c.vals[j] = bv
			}
			continue
		}
		out.c.append(k, bv, true)
	}
	return out
}
