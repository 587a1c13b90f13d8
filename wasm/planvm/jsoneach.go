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
	p.i++ // {
	seen := false
	obj := emptyObject(0)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return obj, nil
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return Value{}, p.errf("expected object key")
		}
		k, err := p.str()
		if err != nil {
			return Value{}, err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return Value{}, p.errf("expected ':'")
		}
		p.i++
		p.ws()
		if k == key {
			if seen {
				return Value{}, p.errf("duplicate member %q", key)
			}
			seen = true
		}
		if k == key && p.i < len(p.s) && p.s[p.i] == '[' {
			if err := p.arrayEach(each); err != nil {
				return Value{}, err
			}
		} else {
			v, err := p.value(1)
			if err != nil {
				return Value{}, err
			}
			obj.c.objInsert(String(k), v) // later duplicates win
		}
		p.ws()
		if p.i >= len(p.s) {
			return Value{}, p.errf("unexpected end in object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return obj, nil
		default:
			return Value{}, p.errf("expected ',' or '}'")
		}
	}
}

// arrayEach parses an array (depth 1) and hands each element to each.
func (p *parser) arrayEach(each func(int, Value) error) error {
	p.i++ // [
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return nil
	}
	for i := 0; ; i++ {
		p.ws()
		v, err := p.value(2)
		if err != nil {
			return err
		}
		if err := each(i, v); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.s) {
			return p.errf("unexpected end in array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errf("expected ',' or ']'")
		}
	}
}
