package planvm

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"unsafe"
)

// member is one Set (or SetValue, when key is not a string) of a builder
// round.
type member struct{ key, val Value }

// roundMembers returns n members for round r: string keys that differ per
// round (so that stale index entries of an earlier round would show), a
// replaced key when dup, and integer keys when mixed.
func roundMembers(r, n int, dup, mixed bool) []member {
	ms := make([]member, 0, n+1)
	for i := range n {
		var k Value
		if mixed && i%3 == 0 {
			k = Int(int64(100*r + i))
		} else {
			k = String(fmt.Sprintf("k%d_%d", (i*7)%n, r%3))
		}
		ms = append(ms, member{k, String(fmt.Sprintf("v%d_%d", i, r))})
	}
	if dup && n > 0 {
		ms = append(ms, member{ms[n/2].key, Int(int64(r))})
	}
	return ms
}

func fill(b *ObjectBuilder, ms []member) {
	for _, m := range ms {
		if s, ok := m.key.AsString(); ok {
			b.Set(s, m.val)
		} else {
			b.SetValue(m.key, m.val)
		}
	}
}

// sameObject checks that got behaves like want in every way a reader can
// see: Compare, Equal, JSON, Len, Get/Lookup of present and absent keys and
// iteration order.
func sameObject(t *testing.T, name string, got, want Value, absent []Value) {
	t.Helper()
	if Compare(got, want) != 0 || !Equal(got, want) {
		t.Errorf("%s: Compare/Equal differ: %s vs %s", name, mustJSON(got), mustJSON(want))
	}
	if g, w := mustJSON(got), mustJSON(want); g != w {
		t.Errorf("%s: JSON %s, want %s", name, g, w)
	}
	if got.Len() != want.Len() {
		t.Errorf("%s: Len %d, want %d", name, got.Len(), want.Len())
	}
	want.Iterate(func(k, v Value) bool {
		if g, ok := got.Lookup(k); !ok || !Equal(g, v) {
			t.Errorf("%s: Lookup(%s) = %s %v, want %s", name, mustJSON(k), mustJSON(g), ok, mustJSON(v))
		}
		if s, isStr := k.AsString(); isStr {
			if g, ok := got.Get(s); !ok || !Equal(g, v) {
				t.Errorf("%s: Get(%q) = %s %v", name, s, mustJSON(g), ok)
			}
		}
		return true
	})
	for _, k := range absent {
		if _, ok := want.Lookup(k); ok {
			continue
		}
		if g, ok := got.Lookup(k); ok {
			t.Errorf("%s: stale key %s found: %s", name, mustJSON(k), mustJSON(g))
		}
	}
	var gk, wk []string
	got.Iterate(func(k, v Value) bool { gk = append(gk, mustJSON(k)+"="+mustJSON(v)); return true })
	want.Iterate(func(k, v Value) bool { wk = append(wk, mustJSON(k)+"="+mustJSON(v)); return true })
	if fmt.Sprint(gk) != fmt.Sprint(wk) {
		t.Errorf("%s: iteration %v, want %v", name, gk, wk)
	}
}

func TestObjectBuilderResetBehavesFresh(t *testing.T) {
	// Each test reuses one builder through a sequence of sizes that grows
	// past smallLen (index maps), shrinks below it and grows again.
	tests := []struct {
		name  string
		hint  int
		sizes []int
		dup   bool
		mixed bool
	}{
		{"ascending", 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, false, false},
		{"descending", 8, []int{20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, false, false},
		{"shrink-grow", 2, []int{20, 3, 9, 8, 20, 0, 15, 1, 9, 2, 12}, true, false},
		{"mixed-keys", 7, []int{12, 4, 20, 9, 0, 10, 8, 16}, true, true},
		{"tiny-hint", 1, []int{1, 2, 3, 0, 2, 17, 2}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewObjectBuilder(tc.hint)
			var prev []Value
			for r, n := range tc.sizes {
				b.Reset()
				ms := roundMembers(r, n, tc.dup, tc.mixed)
				fill(b, ms)
				fresh := NewObjectBuilder(tc.hint)
				fill(fresh, ms)
				sameObject(t, fmt.Sprintf("round %d size %d", r, n), b.Value(), fresh.Value(), prev)
				// A builder reset twice in a row, and one built with the
				// plain constructor, agree as well.
				kvs := make([]KV, 0, len(ms))
				for _, m := range ms {
					if s, ok := m.key.AsString(); ok {
						kvs = append(kvs, KV{s, m.val})
					}
				}
				if !tc.mixed {
					sameObject(t, fmt.Sprintf("round %d NewObject", r), b.Value(), NewObject(kvs...), nil)
				}
				prev = prev[:0]
				for _, m := range ms {
					prev = append(prev, m.key)
				}
			}
			b.Reset()
			b.Reset()
			sameObject(t, "double reset", b.Value(), NewObject(), prev)
		})
	}
}

// TestObjectBuilderResetSortedOrder checks that the sorted order cached by
// an iteration before Reset is not reused for the new members.
func TestObjectBuilderResetSortedOrder(t *testing.T) {
	b := NewObjectBuilder(3)
	b.Set("c", Int(1))
	b.Set("a", Int(2))
	b.Set("b", Int(3))
	if got := mustJSON(b.Value()); got != `{"a":2,"b":3,"c":1}` {
		t.Fatalf("first: %s", got)
	}
	b.Reset()
	b.Set("z", Int(1))
	b.Set("y", Int(2))
	if got := mustJSON(b.Value()); got != `{"y":2,"z":1}` {
		t.Fatalf("after reset: %s", got)
	}
}

func TestArrayBuilderResetBehavesFresh(t *testing.T) {
	b := NewArrayBuilder(2)
	for r, n := range []int{0, 1, 5, 20, 3, 0, 17, 2} {
		b.Reset()
		vs := make([]Value, n)
		for i := range vs {
			vs[i] = String(fmt.Sprintf("e%d_%d", i, r))
			b.Append(vs[i])
		}
		got, want := b.Value(), NewArray(vs...)
		if Compare(got, want) != 0 || mustJSON(got) != mustJSON(want) || got.Len() != n || got.Kind() != KindArray {
			t.Fatalf("round %d: %s, want %s", r, mustJSON(got), mustJSON(want))
		}
		for i := range vs {
			if e, ok := got.Lookup(Int(int64(i))); !ok || !Equal(e, vs[i]) {
				t.Fatalf("round %d: [%d] = %s", r, i, mustJSON(e))
			}
		}
		if _, ok := got.Lookup(Int(int64(n))); ok {
			t.Fatalf("round %d: element past the end", r)
		}
		// A reused array inside an object compares like a fresh one.
		if !Equal(NewObject(KV{"a", got}), NewObject(KV{"a", want})) {
			t.Fatalf("round %d: nested arrays differ", r)
		}
	}
}

// buildInput fills the builders like the filter builds a federation
// request's input.
func buildInput(b, xb *ObjectBuilder) Value {
	b.Reset()
	xb.Reset()
	xb.Set("origin", String("d500.example.de"))
	xb.Set("destination", String("home.example.de"))
	xb.Set("origin_domain", String("d500.example.de"))
	xb.Set("destination_domain", String("home.example.de"))
	b.Set("direction", String("federation"))
	b.Set("method", String("PUT"))
	b.Set("path", String("/_matrix/federation/v1/send/1"))
	b.Set("host", String("home.example.de"))
	b.Set("route", String("federation_other"))
	b.Set("endpoint", String("/_matrix/federation/v1/send/{txnID}"))
	b.Set("federation_list_expired", Bool(false))
	b.Set("xmatrix", xb.Value())
	return b.Value()
}

func TestBuilderResetAllocatesNothing(t *testing.T) {
	tests := []struct {
		name string
		run  func() func()
	}{
		{"input", func() func() {
			b, xb := NewObjectBuilder(8), NewObjectBuilder(4)
			return func() { buildInput(b, xb) }
		}},
		{"indexed-20", func() func() {
			b := NewObjectBuilder(0)
			ms := roundMembers(1, 20, true, false) // string keys: other keys are indexed by an encoding that allocates
			return func() { b.Reset(); fill(b, ms) }
		}},
		{"array-12", func() func() {
			b := NewArrayBuilder(0)
			return func() {
				b.Reset()
				for i := range 12 {
					b.Append(Int(int64(i)))
				}
			}
		}},
	}
	for _, tc := range tests {
		f := tc.run()
		f() // first round sizes the storage
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per Reset+fill, want 0", tc.name, n)
		}
	}
}

// BenchmarkObjectBuilderReset measures building the filter's input per
// request with reused builders (compare BenchmarkObjectBuilderFresh).
func BenchmarkObjectBuilderReset(b *testing.B) {
	ob, xb := NewObjectBuilder(8), NewObjectBuilder(4)
	b.ReportAllocs()
	for range b.N {
		if v := buildInput(ob, xb); v.Len() != 7 {
			b.Fatal(mustJSON(v))
		}
	}
}

func BenchmarkObjectBuilderFresh(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if v := buildInput(NewObjectBuilder(7), NewObjectBuilder(2)); v.Len() != 7 {
			b.Fatal(mustJSON(v))
		}
	}
}

// TestPlainAtomicLayout checks the layout the single-threaded (wasm) access
// to size hints and sort orders relies on: the atomic's word is its only
// field.
func TestPlainAtomicLayout(t *testing.T) {
	var n atomic.Int32
	n.Store(41)
	if *plainInt32(&n) != 41 || unsafe.Sizeof(n) != 4 {
		t.Fatal("atomic.Int32 is not a plain int32")
	}
	*plainInt32(&n) = 42
	if n.Load() != 42 {
		t.Fatal("plain store not seen by Load")
	}
	var c composite
	order := []int32{2, 0, 1}
	c.sorted.Store(&order)
	if (*[]int32)(*plainPointer(&c.sorted)) != &order || unsafe.Sizeof(c.sorted) != unsafe.Sizeof(&order) {
		t.Fatal("atomic.Pointer is not a plain pointer")
	}
	*plainPointer(&c.sorted) = nil
	if c.sorted.Load() != nil {
		t.Fatal("plain store not seen by Load")
	}
}

// TestBuilderLinearThenIndexed: an object Set fills beyond smallLen stays
// without index maps; a member added by SetValue after that indexes all
// of them, and every member is found either way, also after a Reset.
func TestBuilderLinearThenIndexed(t *testing.T) {
	b := NewObjectBuilder(builderLinear)
	for round := 0; round < 2; round++ {
		b.Reset()
		for i := 0; i < 12; i++ {
			b.Set("k"+strconv.Itoa(i), Int(int64(i)))
		}
		if b.Value().c.strIdx != nil {
			t.Fatal("indexed below builderLinear")
		}
		b.SetValue(String("late"), Int(99))
		b.Set("k3", Int(33))
		for i := 0; i < 12; i++ {
			want := int64(i)
			if i == 3 {
				want = 33
			}
			v, ok := b.Value().Get("k" + strconv.Itoa(i))
			if n, _ := v.AsInt(); !ok || n != want {
				t.Errorf("round %d: k%d = %v %v", round, i, v, ok)
			}
		}
		if v, ok := b.Value().Get("late"); !ok || func() int64 { n, _ := v.AsInt(); return n }() != 99 {
			t.Errorf("round %d: late = %v %v", round, v, ok)
		}
		if b.Value().Len() != 13 {
			t.Errorf("round %d: %d members", round, b.Value().Len())
		}
	}
}
