package planvm

import (
	"math"
	"math/big"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
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
	text bool  // number held as text in s
	opq  uint8 // an opaque string's number + 1 (observe.go); 0 for any other value
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
	// scratch marks composites in a vm's arena (see arena); transient those
	// of a builder, which a caller fills anew for each input (observe.go).
	scratch, transient bool
}

const smallLen = 8

// oneThread is true where Go runs on a single thread (wasm: the filter).
// Atomic operations are function calls there (no compiler intrinsics), so
// the size hints and cached sort orders, which are shared between
// evaluations, are read and written with plain loads and stores instead.
const oneThread = runtime.GOARCH == "wasm"

func loadInt32(p *atomic.Int32) int32 {
	if oneThread {
		return *plainInt32(p)
	}
	return p.Load()
}

func storeInt32(p *atomic.Int32, n int32) {
	if oneThread {
		*plainInt32(p) = n
		return
	}
	p.Store(n)
}

// sortedOf and setSorted access c.sorted (see oneThread).
func (c *composite) sortedOf() *[]int32 {
	if oneThread {
		return (*[]int32)(*plainPointer(&c.sorted))
	}
	return c.sorted.Load()
}

func (c *composite) setSorted(p *[]int32) {
	if oneThread {
		*plainPointer(&c.sorted) = unsafe.Pointer(p)
		return
	}
	c.sorted.Store(p)
}

// plainInt32 and plainPointer expose the word inside an atomic (its only
// non-empty field; TestPlainAtomicLayout checks it).
func plainInt32(p *atomic.Int32) *int32 { return (*int32)(unsafe.Pointer(p)) }

func plainPointer[T any](p *atomic.Pointer[T]) *unsafe.Pointer {
	return (*unsafe.Pointer)(unsafe.Pointer(p))
}

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
	return b.Stable()
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

// ObjectBuilder builds an object in place. Set after Value changes the
// object already returned; Reset starts a new one in the same storage.
type ObjectBuilder struct {
	v Value
	// Index maps of an object that grew beyond smallLen, emptied by Reset
	// and handed back to the object when it grows that large again.
	spareStr, spareOth map[string]int32
}

// builderLinear is how many members an object filled by
// ObjectBuilder.Set holds without index maps (lookups scan it, as they do
// any object without them). A request's input has 8–12 members and is
// built anew per request: filling and clearing two maps for it cost more
// than the scans its evaluation does (in wasm the runtime's map hashing
// dominates).
const builderLinear = 16

// NewObjectBuilder returns a builder with room for n members.
func NewObjectBuilder(n int) *ObjectBuilder {
	v := emptyObject(n)
	v.c.transient = true
	return &ObjectBuilder{v: v}
}

// Set inserts or replaces a string-keyed member.
func (b *ObjectBuilder) Set(key string, v Value) {
	c := b.v.c
	if n := len(c.elems); n < builderLinear && n < cap(c.elems) && n < cap(c.vals) && c.strIdx == nil && c.othIdx == nil && c.sortedOf() == nil && c.size == nil {
		// A small object with room, such as a request's input: the key is
		// stored field by field, without the zeroing and copying of a
		// key Value (memory.fill and memory.copy in wasm), and up to
		// builderLinear members without index maps.
		for j := range c.elems {
			if e := &c.elems[j]; e.k == KindString && len(e.s) == len(key) && sameBytes(e.s, key) {
				c.vals[j] = v
				return
			}
		}
		c.elems = c.elems[:n+1]
		e := &c.elems[n]
		e.k, e.text, e.opq, e.i, e.s, e.c = KindString, false, 0, 0, key, nil
		c.vals = c.vals[:n+1]
		c.vals[n] = v
		return
	}
	k := Value{k: KindString, s: key}
	b.insert(&k, &v)
}

// SetValue inserts or replaces a member with any key.
func (b *ObjectBuilder) SetValue(key, v Value) { b.insert(&key, &v) }

func (b *ObjectBuilder) insert(k, v *Value) {
	c := b.v.c
	if n := len(c.elems); n > smallLen && c.strIdx == nil && c.othIdx == nil {
		// Set left the members unindexed (builderLinear): index them
		// before a member goes in the general way, which indexes only
		// the new one; with the maps of before the last Reset.
		c.strIdx, c.othIdx = b.spareStr, b.spareOth
		b.spareStr, b.spareOth = nil, nil
		for i := range c.elems {
			c.index(i)
		}
	}
	if len(c.elems) == smallLen && c.strIdx == nil && c.othIdx == nil && (b.spareStr != nil || b.spareOth != nil) {
		// The next new member indexes the object: give it the emptied
		// maps of before the last Reset (index uses a map it finds).
		if c.find(*k) < 0 {
			c.strIdx, c.othIdx = b.spareStr, b.spareOth
			b.spareStr, b.spareOth = nil, nil
			c.appendRef(k, v, true)
			return
		}
	}
	c.objInsertRef(k, v)
}

// Value returns the object.
func (b *ObjectBuilder) Value() Value { return b.v }

// Stable returns the object as one the builder will not fill again (policy
// data, not a per-request input): an evaluation that observes opaque
// strings may record lookups in it (observe.go). The builder must not be
// used afterwards.
func (b *ObjectBuilder) Stable() Value {
	b.v.c.transient = false
	return b.v
}

// Reset empties the object and keeps its storage (member arrays, index
// maps), so that a builder reused per request builds its object without
// allocating. The object previously returned by Value (and anything holding
// it, such as an enclosing object or an evaluation's result) must not be
// used after Reset: its members are overwritten by the next Set calls.
func (b *ObjectBuilder) Reset() {
	c := b.v.c
	clear(c.elems)
	clear(c.vals)
	c.elems, c.vals = c.elems[:0], c.vals[:0]
	if c.strIdx != nil {
		clear(c.strIdx)
		b.spareStr, c.strIdx = c.strIdx, nil
	}
	if c.othIdx != nil {
		clear(c.othIdx)
		b.spareOth, c.othIdx = c.othIdx, nil
	}
	if c.sortedOf() != nil {
		c.setSorted(nil)
	}
}

// ArrayBuilder builds an array in place, like ObjectBuilder.
type ArrayBuilder struct{ v Value }

// NewArrayBuilder returns a builder with room for n elements.
func NewArrayBuilder(n int) *ArrayBuilder {
	return &ArrayBuilder{v: Value{k: KindArray, c: &composite{elems: make([]Value, 0, max(n, 0)), transient: true}}}
}

// Append adds v at the end.
func (b *ArrayBuilder) Append(v Value) { b.v.c.elems = append(b.v.c.elems, v) }

// Value returns the array.
func (b *ArrayBuilder) Value() Value { return b.v }

// Reset empties the array and keeps its storage. The array previously
// returned by Value (and anything holding it) must not be used after Reset.
func (b *ArrayBuilder) Reset() {
	c := b.v.c
	clear(c.elems)
	c.elems = c.elems[:0]
	if c.sortedOf() != nil {
		c.setSorted(nil)
	}
}

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
	for i := range c.elems {
		if e := &c.elems[i]; e.k == KindString && len(e.s) == len(key) && sameBytes(e.s, key) {
			return i
		}
	}
	return -1
}

// sameBytes compares strings of equal length. Keys of 4 to 16 bytes
// compare as two overlapping words each, without the call (and byte loop)
// of the runtime's comparison, which dominates key lookups in wasm.
func sameBytes(a, b string) bool {
	n := len(a)
	pa, pb := unsafe.Pointer(unsafe.StringData(a)), unsafe.Pointer(unsafe.StringData(b))
	switch {
	case n >= 8 && n <= 16:
		return *(*uint64)(pa) == *(*uint64)(pb) && *(*uint64)(unsafe.Add(pa, n-8)) == *(*uint64)(unsafe.Add(pb, n-8))
	case n >= 4 && n < 8:
		return *(*uint32)(pa) == *(*uint32)(pb) && *(*uint32)(unsafe.Add(pa, n-4)) == *(*uint32)(unsafe.Add(pb, n-4))
	}
	return a == b
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
	if c.sortedOf() != nil { // a plain load; the store is a full barrier
		c.setSorted(nil)
	}
	n := len(c.elems)
	if c.size != nil && int32(n) > loadInt32(c.size) {
		storeInt32(c.size, int32(n))
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
	if k.k == KindString && c.strIdx == nil && c.othIdx == nil {
		// A small object with string keys, such as the decision a plan
		// builds: scan and append here, without the calls of findStr and
		// appendRef (calls dominate in wasm).
		for j := range c.elems {
			if e := &c.elems[j]; e.k == KindString && len(e.s) == len(k.s) && sameBytes(e.s, k.s) {
				c.vals[j] = *v
				return
			}
		}
		if n := len(c.elems); n < smallLen && n < cap(c.elems) && n < cap(c.vals) && c.sortedOf() == nil {
			c.elems = c.elems[:n+1]
			c.elems[n] = *k
			c.vals = c.vals[:n+1]
			c.vals[n] = *v
			if c.size != nil && int32(n+1) > loadInt32(c.size) {
				storeInt32(c.size, int32(n+1))
			}
			return
		}
		c.appendRef(k, v, true)
		return
	}
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
	if p := c.sortedOf(); p != nil {
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
	c.setSorted(&order)
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
