package planvm

import (
	"cmp"
	"math/big"
	"strings"
	"unicode/utf8"
)

// Equal reports whether a and b are the same Rego value (1 == 1.0).
func Equal(a, b Value) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case KindUndefined, KindNull:
		return true
	case KindBool:
		return a.i == b.i
	case KindString:
		return a.s == b.s
	case KindNumber:
		if !a.text && !b.text {
			return a.i == b.i
		}
		return compareNumbers(a, b) == 0
	case KindArray:
		if a.c == b.c {
			return true
		}
		if len(a.c.elems) != len(b.c.elems) {
			return false
		}
		for i := range a.c.elems {
			if !Equal(a.c.elems[i], b.c.elems[i]) {
				return false
			}
		}
		return true
	case KindObject:
		if a.c == b.c {
			return true
		}
		if len(a.c.elems) != len(b.c.elems) {
			return false
		}
		for i, k := range a.c.elems {
			j := b.c.find(k)
			if j < 0 || !Equal(a.c.vals[i], b.c.vals[j]) {
				return false
			}
		}
		return true
	case KindSet:
		if a.c == b.c {
			return true
		}
		if len(a.c.elems) != len(b.c.elems) {
			return false
		}
		for _, k := range a.c.elems {
			if b.c.find(k) < 0 {
				return false
			}
		}
		return true
	}
	return false
}

// Compare orders values like OPA: by kind first (null < boolean < number <
// string < array < object < set), then by content.
func Compare(a, b Value) int {
	if a.k != b.k {
		return cmp.Compare(a.k, b.k)
	}
	switch a.k {
	case KindBool:
		return cmp.Compare(a.i, b.i)
	case KindNumber:
		return compareNumbers(a, b)
	case KindString:
		return strings.Compare(a.s, b.s)
	case KindArray:
		return compareSeq(a.c.elems, b.c.elems, nil, nil)
	case KindObject:
		ka, va := sortedPairs(a)
		kb, vb := sortedPairs(b)
		return compareSeq(ka, kb, va, vb)
	case KindSet:
		ka, _ := sortedPairs(a)
		kb, _ := sortedPairs(b)
		return compareSeq(ka, kb, nil, nil)
	}
	return 0
}

// compareSeq compares element-wise; for objects keys first, then values, at
// each position (OPA's object order), then by length.
func compareSeq(a, b, av, bv []Value) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if c := Compare(a[i], b[i]); c != 0 {
			return c
		}
		if av != nil {
			if c := Compare(av[i], bv[i]); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(len(a), len(b))
}

func sortedPairs(v Value) (keys, vals []Value) {
	order := v.c.sortedOrder()
	keys = make([]Value, len(order))
	if v.k == KindObject {
		vals = make([]Value, len(order))
	}
	for i, j := range order {
		keys[i] = v.c.elems[j]
		if vals != nil {
			vals[i] = v.c.vals[j]
		}
	}
	return keys, vals
}

func compareNumbers(a, b Value) int {
	if !a.text && !b.text {
		return cmp.Compare(a.i, b.i)
	}
	ra, ok1 := toRat(a)
	rb, ok2 := toRat(b)
	if !ok1 || !ok2 {
		return strings.Compare(a.s, b.s)
	}
	return ra.Cmp(rb)
}

func toRat(v Value) (*big.Rat, bool) {
	if !v.text {
		return new(big.Rat).SetInt64(v.i), true
	}
	return new(big.Rat).SetString(v.s)
}

func utf8Len(s string) int { return utf8.RuneCountInString(s) }
