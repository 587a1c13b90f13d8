package planvm

// NumMembers and Member read an object's members in no particular order:
// for a caller that looks at every member once (the filter reading a
// decision), one pass without sorting instead of a lookup per key.

// NumMembers is the number of members of an object (0 for anything else).
func (v Value) NumMembers() int {
	if v.k != KindObject {
		return 0
	}
	return len(v.c.elems)
}

// Member returns the i-th member of an object, 0 ≤ i < NumMembers().
func (v Value) Member(i int) (key, val Value) { return v.c.elems[i], v.c.vals[i] }
