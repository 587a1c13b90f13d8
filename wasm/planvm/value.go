package planvm

import (
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Kind is the type of a Value. The zero Value is undefined.
type Kind uint8

// Kinds in OPA's sort order (null < boolean < number < string < array <
// object < set), preceded by Undefined.
const (
	KindUndefined Kind = iota
	KindNull
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
	KindSet
)

var kindNames = [...]string{"undefined", "null", "boolean", "number", "string", "array", "object", "set"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is an immutable-by-convention Rego value. Scalars (null, booleans,
// numbers, strings) live inside the struct and cost no allocation; arrays,
// objects and sets point to shared storage. The zero Value is undefined.
//
// Numbers follow OPA: an int64 fast path (num == false, i holds the value)
// and otherwise the JSON text of the number in s (arbitrary precision).
type Value struct {
	k    Kind
	text bool // number held as text in s
	i    int64
	s    string
	c    *composite
	_    uint64 // pads to 48 bytes: copies become three non-overlapping 16-byte moves
}

// composite stores arrays (elems), objects (elems = keys, vals) and sets
// (elems). Lookups by key go through index maps once the collection is
// larger than smallLen; below that a linear scan is faster and allocates
// nothing.
type composite struct {
	elems  []Value
	vals   []Value
	strIdx map[string]int32 // string keys/elements
	othIdx map[string]int32 // other keys/elements by canonical key
	sorted atomic.Pointer[[]int32]
	// size records the largest size objects built by one MakeObject or
	// MakeSet statement reached, so that the next evaluation allocates
	// them at once at that size.
	size *atomic.Int32
	// scratch marks composites in a vm's arena (see arena).
	scratch bool
}

const smallLen = 8

// KV is one object member for NewObject.
type KV struct {
	Key   string
	Value Value
}

// Constructors.

// Null returns null.
func Null() Value { return Value{k: KindNull} }

// Bool returns a boolean.
func Bool(b bool) Value {
	if b {
		return Value{k: KindBool, i: 1}
	}
	return Value{k: KindBool}
}

// Int returns an integer number.
func Int(i int64) Value { return Value{k: KindNumber, i: i} }

// Float returns a number from a float64 (NaN and infinities are not numbers
// in JSON and become undefined).
func Float(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return Int(int64(f))
	}
	return Value{k: KindNumber, text: true, s: strconv.FormatFloat(f, 'g', -1, 64)}
}

// Number returns a number from its JSON text; ok is false when s is not a
// JSON number.
func Number(s string) (Value, bool) {
	if !validNumber(s) {
		return Value{}, false
	}
	return numberFromText(s), true
}

func numberFromText(s string) Value {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Int(i)
	}
	return Value{k: KindNumber, text: true, s: s}
}

// String returns a string.
func String(s string) Value { return Value{k: KindString, s: s} }

// Undefined returns the undefined value (same as the zero Value).
func Undefined() Value { return Value{} }

// NewArray returns an array of vs (the slice is copied).
func NewArray(vs ...Value) Value {
	return Value{k: KindArray, c: &composite{elems: slices.Clone(vs)}}
}

func arrayOf(vs []Value) Value { return Value{k: KindArray, c: &composite{elems: vs}} }

// NewObject returns an object with string keys. Later duplicates win.
func NewObject(kv ...KV) Value {
	b := NewObjectBuilder(len(kv))
	for _, e := range kv {
		b.Set(e.Key, e.Value)
	}
	return b.Value()
}

// NewSet returns a set of vs.
func NewSet(vs ...Value) Value {
	s := emptySet(len(vs))
	for _, v := range vs {
		s.c.setAdd(v)
	}
	return s
}

// smallComposite co-allocates a composite with room for a few members, so
// that the small objects and sets a plan builds per evaluation (decisions,
// error bodies, constant sets) cost one allocation.
type smallComposite struct {
	c   composite
	buf [smallCap * 2]Value
}

const smallCap = 4

// tinyComposite holds objects of up to two members exactly (the entries of
// a federation list: 100 000 of them must stay compact).
type tinyComposite struct {
	c   composite
	buf [4]Value
}

// emptyObject returns an object with room for n members; n == 0 means the
// size is unknown (objects a plan builds), n > 0 that it is exact (parsed
// or copied objects).
func emptyObject(n int) Value {
	switch {
	case n == 0 || (n > 2 && n <= smallCap):
		sc := new(smallComposite)
		sc.c.elems, sc.c.vals = sc.buf[:0:smallCap], sc.buf[smallCap:smallCap:2*smallCap]
		return Value{k: KindObject, c: &sc.c}
	case n <= 2:
		tc := new(tinyComposite)
		tc.c.elems, tc.c.vals = tc.buf[:0:2], tc.buf[2:2:4]
		return Value{k: KindObject, c: &tc.c}
	}
	kv := make([]Value, 2*n)
	return Value{k: KindObject, c: &composite{elems: kv[:0:n], vals: kv[n : n : 2*n]}}
}

// objectWithCap and setWithCap allocate exactly n members (the size a
// MakeObject/MakeSet statement reached before); 0 starts empty and grows.
func objectWithCap(n int) Value {
	if n == 0 {
		return Value{k: KindObject, c: &composite{}}
	}
	return emptyObject(n)
}

func setWithCap(n int) Value {
	if n <= 2 {
		return emptySet(n)
	}
	return Value{k: KindSet, c: &composite{elems: make([]Value, 0, n)}}
}

func emptySet(n int) Value {
	if n <= 2 && n > 0 {
		tc := new(tinyComposite)
		tc.c.elems = tc.buf[:0:4]
		return Value{k: KindSet, c: &tc.c}
	}
	if n <= 2*smallCap {
		sc := new(smallComposite)
		sc.c.elems = sc.buf[: 0 : 2*smallCap]
		return Value{k: KindSet, c: &sc.c}
	}
	return Value{k: KindSet, c: &composite{elems: make([]Value, 0, n)}}
}

// ObjectBuilder builds an object in place. It must not be used after Value.
type ObjectBuilder struct{ v Value }

// NewObjectBuilder returns a builder with room for n members.
func NewObjectBuilder(n int) *ObjectBuilder { return &ObjectBuilder{v: emptyObject(n)} }

// Set inserts or replaces a string-keyed member.
func (b *ObjectBuilder) Set(key string, v Value) { b.v.c.objInsert(String(key), v) }

// SetValue inserts or replaces a member with any key.
func (b *ObjectBuilder) SetValue(key, v Value) { b.v.c.objInsert(key, v) }

// Value returns the object.
func (b *ObjectBuilder) Value() Value { return b.v }

// Accessors.

// Kind returns v's kind.
func (v Value) Kind() Kind { return v.k }

// IsDefined reports whether v is defined.
func (v Value) IsDefined() bool { return v.k != KindUndefined }

// AsString returns the string if v is a string.
func (v Value) AsString() (string, bool) { return v.s, v.k == KindString }

// AsBool returns the boolean if v is a boolean.
func (v Value) AsBool() (bool, bool) { return v.i != 0, v.k == KindBool }

// AsInt returns v as an int64 if v is an integral number in range.
func (v Value) AsInt() (int64, bool) {
	if v.k != KindNumber {
		return 0, false
	}
	if !v.text {
		return v.i, true
	}
	if r, ok := new(big.Rat).SetString(v.s); ok && r.IsInt() && r.Num().IsInt64() {
		return r.Num().Int64(), true
	}
	return 0, false
}

// AsFloat returns v as a float64 if v is a number.
func (v Value) AsFloat() (float64, bool) {
	if v.k != KindNumber {
		return 0, false
	}
	if !v.text {
		return float64(v.i), true
	}
	f, _ := strconv.ParseFloat(v.s, 64)
	return f, true
}

// NumberText returns the JSON text of a number.
func (v Value) NumberText() (string, bool) {
	if v.k != KindNumber {
		return "", false
	}
	if v.text {
		return v.s, true
	}
	return strconv.FormatInt(v.i, 10), true
}

// Len returns the number of elements of an array, object or set, the number
// of characters of a string, and 0 otherwise.
func (v Value) Len() int {
	switch v.k {
	case KindArray, KindObject, KindSet:
		return len(v.c.elems)
	case KindString:
		return utf8Len(v.s)
	}
	return 0
}

// Get returns the member of an object with a string key.
func (v Value) Get(key string) (Value, bool) {
	if v.k != KindObject {
		return Value{}, false
	}
	i := v.c.findStr(key)
	if i < 0 {
		return Value{}, false
	}
	return v.c.vals[i], true
}

// Lookup returns v[key] for objects (any key) and arrays (integer index);
// for sets it returns key itself when it is a member.
func (v Value) Lookup(key Value) (Value, bool) {
	switch v.k {
	case KindObject:
		if i := v.c.find(key); i >= 0 {
			return v.c.vals[i], true
		}
	case KindArray:
		if key.k == KindNumber {
			if n, ok := key.AsInt(); ok && n >= 0 && n < int64(len(v.c.elems)) {
				return v.c.elems[n], true
			}
		}
	case KindSet:
		if v.c.find(key) >= 0 {
			return key, true
		}
	}
	return Value{}, false
}

// Index returns the i-th element of an array (or the i-th key of an object
// or element of a set in insertion order).
func (v Value) Index(i int) Value {
	if v.c == nil || i < 0 || i >= len(v.c.elems) {
		return Value{}
	}
	return v.c.elems[i]
}

// Contains reports whether a set holds x.
func (v Value) Contains(x Value) bool {
	return (v.k == KindSet || v.k == KindObject) && v.c.find(x) >= 0
}

// Iterate calls f for every element in OPA's order: arrays by index (key is
// the index), objects by sorted key, sets by sorted element (key == value).
// It stops when f returns false.
func (v Value) Iterate(f func(key, val Value) bool) {
	switch v.k {
	case KindArray:
		for i, e := range v.c.elems {
			if !f(Int(int64(i)), e) {
				return
			}
		}
	case KindObject:
		for _, i := range v.c.sortedOrder() {
			if !f(v.c.elems[i], v.c.vals[i]) {
				return
			}
		}
	case KindSet:
		for _, i := range v.c.sortedOrder() {
			if !f(v.c.elems[i], v.c.elems[i]) {
				return
			}
		}
	}
}

// composite operations.

func (c *composite) findStr(key string) int {
	if c.strIdx != nil {
		if i, ok := c.strIdx[key]; ok {
			return int(i)
		}
		return -1
	}
	if c.othIdx != nil {
		return -1
	}
	// Length and first byte are compared inline before the full
	// comparison: most keys of a small object differ in one of them, and
	// the full comparison is a call.
	n := len(key)
	if n == 0 {
		for i := range c.elems {
			if e := &c.elems[i]; e.k == KindString && len(e.s) == 0 {
				return i
			}
		}
		return -1
	}
	b0 := key[0]
	for i := range c.elems {
		if e := &c.elems[i]; e.k == KindString && len(e.s) == n && e.s[0] == b0 && e.s == key {
			return i
		}
	}
	return -1
}

func (c *composite) find(key Value) int {
	if key.k == KindString {
		return c.findStr(key.s)
	}
	if c.strIdx != nil || c.othIdx != nil {
		if c.othIdx == nil {
			return -1
		}
		if i, ok := c.othIdx[canonicalKey(key)]; ok {
			return int(i)
		}
		return -1
	}
	for i := range c.elems {
		if Equal(c.elems[i], key) {
			return i
		}
	}
	return -1
}

func (c *composite) index(i int) {
	k := c.elems[i]
	if k.k == KindString {
		if c.strIdx == nil {
			c.strIdx = make(map[string]int32, max(cap(c.elems), 2*smallLen))
		}
		c.strIdx[k.s] = int32(i)
		return
	}
	if c.othIdx == nil {
		c.othIdx = make(map[string]int32)
	}
	c.othIdx[canonicalKey(k)] = int32(i)
}

func (c *composite) append(k, v Value, obj bool) { c.appendRef(&k, &v, obj) }

// appendRef is append on pointers (see objInsertRef).
func (c *composite) appendRef(k, v *Value, obj bool) {
	c.elems = append(c.elems, *k)
	if obj {
		c.vals = append(c.vals, *v)
	}
	if c.sorted.Load() != nil { // a plain load; the store is a full barrier
		c.sorted.Store(nil)
	}
	n := len(c.elems)
	if c.size != nil && int32(n) > c.size.Load() {
		c.size.Store(int32(n))
	}
	switch {
	case n == smallLen+1:
		for i := range c.elems {
			c.index(i)
		}
	case n > smallLen+1:
		c.index(n - 1)
	}
}

func (c *composite) objInsert(k, v Value) { c.objInsertRef(&k, &v) }

// objInsertRef is objInsert on pointers (48-byte Values do not fit the
// register ABI; the plan's ObjectInsert statements use this form).
func (c *composite) objInsertRef(k, v *Value) {
	var i int
	if k.k == KindString {
		i = c.findStr(k.s)
	} else {
		i = c.find(*k)
	}
	if i >= 0 {
		c.vals[i] = *v
		return
	}
	c.appendRef(k, v, true)
}

func (c *composite) setAdd(v Value) {
	if c.find(v) >= 0 {
		return
	}
	c.append(v, Value{}, false)
}

func (c *composite) sortedOrder() []int32 {
	if p := c.sorted.Load(); p != nil {
		return *p
	}
	order := make([]int32, len(c.elems))
	allStr := true
	for i := range order {
		order[i] = int32(i)
		if c.elems[i].k != KindString {
			allStr = false
		}
	}
	if allStr {
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(c.elems[a].s, c.elems[b].s) })
	} else {
		slices.SortFunc(order, func(a, b int32) int { return Compare(c.elems[a], c.elems[b]) })
	}
	c.sorted.Store(&order)
	return order
}

// canonicalKey encodes a non-string value so that equal values (1 and 1.0
// included) get equal keys.
func canonicalKey(v Value) string {
	var sb strings.Builder
	writeKey(&sb, v)
	return sb.String()
}

func writeKey(sb *strings.Builder, v Value) {
	sb.WriteByte(byte('0' + v.k))
	switch v.k {
	case KindBool:
		if v.i != 0 {
			sb.WriteByte('t')
		} else {
			sb.WriteByte('f')
		}
	case KindNumber:
		sb.WriteString(numberKey(v))
	case KindString:
		sb.WriteString(strconv.Quote(v.s))
	case KindArray:
		sb.WriteByte('[')
		for _, e := range v.c.elems {
			writeKey(sb, e)
			sb.WriteByte(',')
		}
		sb.WriteByte(']')
	case KindObject, KindSet:
		sb.WriteByte('{')
		for _, i := range v.c.sortedOrder() {
			writeKey(sb, v.c.elems[i])
			if v.k == KindObject {
				sb.WriteByte(':')
				writeKey(sb, v.c.vals[i])
			}
			sb.WriteByte(',')
		}
		sb.WriteByte('}')
	}
}

// numberKey normalises a number: integers as decimal, others as an exact
// rational.
func numberKey(v Value) string {
	if !v.text {
		return strconv.FormatInt(v.i, 10)
	}
	r, ok := new(big.Rat).SetString(v.s)
	if !ok {
		return v.s
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.String()
}
