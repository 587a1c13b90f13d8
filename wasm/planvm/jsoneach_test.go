package planvm

import (
	"errors"
	"strings"
	"testing"
)

// parseEach runs ParseJSONEach on s for member "l" and returns the object
// and, as an array, the elements it streamed (undefined when none).
func parseEach(s string) (obj, list Value, err error) {
	var elems []Value
	obj, err = ParseJSONEach([]byte(s), "l", func(i int, v Value) error {
		if i != len(elems) {
			return errors.New("index out of order")
		}
		elems = append(elems, v)
		return nil
	})
	if elems != nil {
		list = NewArray(elems...)
	}
	return obj, list, err
}

// split is what ParseJSONEach should make of v: v without an array member
// "l", and that member.
func split(v Value) (obj, list Value) {
	l, ok := v.Get("l")
	if !ok || l.Kind() != KindArray {
		return v, Value{}
	}
	b := NewObjectBuilder(v.Len())
	v.Iterate(func(k, e Value) bool {
		if s, _ := k.AsString(); s != "l" {
			b.SetValue(k, e)
		}
		return true
	})
	if l.Len() == 0 {
		return b.Value(), Value{}
	}
	return b.Value(), l
}

func TestParseJSONEach(t *testing.T) {
	for _, c := range []struct{ name, in, want, err string }{
		{name: "list and members", in: `{"v":1,"l":[{"a":1},2,"x"],"w":[3]}`, want: `{"l":[{"a":1},2,"x"],"v":1,"w":[3]}`},
		{name: "empty list", in: ` { "l" : [ ] , "v" : null } `, want: `{"l":[],"v":null}`},
		{name: "no list", in: `{"v":1}`, want: `{"v":1}`},
		{name: "empty object", in: `{}`, want: `{}`},
		{name: "list not an array", in: `{"l":{"a":1}}`, want: `{"l":{"a":1}}`},
		{name: "not an object", in: `[1,2]`, want: `[1,2]`},
		{name: "later duplicate of another member wins", in: `{"v":1,"v":2}`, want: `{"v":2}`},
		{name: "duplicate list", in: `{"l":[1],"l":[2]}`, err: `duplicate member "l"`},
		{name: "duplicate list member of another type", in: `{"l":1,"l":[2]}`, err: `duplicate member "l"`},
		{name: "bad element", in: `{"l":[1,tru]}`, err: "invalid literal"},
		{name: "missing comma", in: `{"l":[1 2]}`, err: "expected ',' or ']'"},
		{name: "truncated list", in: `{"l":[1,`, err: "unexpected end"},
		{name: "truncated object", in: `{"l":[1]`, err: "unexpected end in object"},
		{name: "trailing data", in: `{"l":[]} 1`, err: "trailing data"},
		{name: "key not a string", in: `{l:[]}`, err: "expected object key"},
		{name: "empty", in: ``, err: "unexpected end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj, list, err := parseEach(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantObj, wantList := split(mustParse(t, c.want))
			if !Equal(obj, wantObj) || !Equal(list, wantList) {
				t.Fatalf("got %s and list %s, want %s", mustJSON(obj), mustJSON(list), c.want)
			}
		})
	}
	stop := errors.New("stop")
	n := 0
	_, err := ParseJSONEach([]byte(`{"l":[1,2,3]}`), "l", func(int, Value) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("error of each: %v after %d calls", err, n)
	}
}

// FuzzParseJSONEach: a document without duplicate keys parses to the same
// value whether its list is streamed or not.
func FuzzParseJSONEach(f *testing.F) {
	for _, s := range []string{`{"l":[1,{"a":[2]},"x"],"v":true}`, `{"l":[]}`, `[{"l":[1]}]`, `{"l":5}`, `{"v":{"l":[1]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := ParseJSON(b)
		obj, list, gerr := parseEach(string(b))
		if werr != nil {
			if gerr == nil {
				t.Fatalf("ParseJSON fails (%v), ParseJSONEach does not", werr)
			}
			return
		}
		if gerr != nil {
			if strings.Contains(gerr.Error(), "duplicate member") {
				return
			}
			t.Fatalf("ParseJSONEach fails (%v), ParseJSON does not", gerr)
		}
		wantObj, wantList := split(want)
		if !Equal(obj, wantObj) || !Equal(list, wantList) {
			t.Fatalf("ParseJSONEach %s and %s, ParseJSON %s", mustJSON(obj), mustJSON(list), mustJSON(want))
		}
	})
}
