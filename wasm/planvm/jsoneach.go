package planvm

// ParseJSONEach parses b as ParseJSON does, for a document that is an object
// with one large array member (such as the domain list of a federation
// list): the elements of the member named key are handed to each, in order,
// as they are parsed, and not kept. The document then costs memory for one
// element at a time instead of a tree of all of them, which in a Wasm VM
// (whose memory never shrinks) is the difference between a few kilobytes
// and tens of megabytes for a list of 100 000 entries.
//
// The object returned holds the other members. A document that is not an
// object is returned as ParseJSON returns it, without calls of each. key
// may occur once: a second occurrence is an error, as each would see both
// arrays where a parse keeps only the later. A key member that is not an
// array is returned in the object like any other member. An error of each
// stops the parse and is returned as it is.
func ParseJSONEach(b []byte, key string, each func(i int, elem Value) error) (Value, error) {
	p := parser{s: string(b)}
	p.ws()
	var v Value
	var err error
	if p.i < len(p.s) && p.s[p.i] == '{' {
		v, err = p.objectEach(key, each)
	} else {
		v, err = p.value(0)
	}
	if err != nil {
		return Value{}, err
	}
	p.ws()
	if p.i != len(p.s) {
		return Value{}, p.errf("trailing data")
	}
	return v, nil
}

// objectEach is object (depth 0) with the member key streamed to each.
func (p *parser) objectEach(key string, each func(int, Value) error) (Value, error) {
	seen := false
	obj := emptyObject(0)
	err := p.members(func(k string) error {
		if k == key {
			if seen {
				return p.errf("duplicate member %q", key)
			}
			seen = true
			if p.i < len(p.s) && p.s[p.i] == '[' {
				return p.elements(func(i int) error {
					v, err := p.value(2)
					if err != nil {
						return err
					}
					return each(i, v)
				})
			}
		}
		v, err := p.value(1)
		if err != nil {
			return err
		}
		obj.c.objInsert(String(k), v) // later duplicates win
		return nil
	})
	if err != nil {
		return Value{}, err
	}
	return obj, nil
}
