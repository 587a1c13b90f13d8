package matrix

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, c := range []struct {
		raw   string
		segs  []string // raw segments
		query string
		err   error
	}{
		{"/_matrix/client/v3/sync?since=s1", []string{"_matrix", "client", "v3", "sync"}, "since=s1", nil},
		{"/", nil, "", nil},
		{"/a/", []string{"a", ""}, "", nil},
		{"/a/%2F/b", []string{"a", "%2F", "b"}, "", nil},
		{"/a/%3Fb?c", []string{"a", "%3Fb"}, "c", nil},
		{"/a/b?c?d", []string{"a", "b"}, "c?d", nil},
		{"", nil, "", ErrBadPath},
		{"a/b", nil, "", ErrBadPath},
		{"*", nil, "", ErrBadPath},
		{"/a#b", nil, "", ErrBadPath},
		{"/a//b", nil, "", ErrEmptySegment},
		{"//a", nil, "", ErrEmptySegment},
		{"/a/./b", nil, "", ErrDotSegment},
		{"/a/../b", nil, "", ErrDotSegment},
		{"/a/..", nil, "", ErrDotSegment},
		{"/a/%2e", nil, "", ErrDotSegment},
		{"/a/%2E%2e/b", nil, "", ErrDotSegment},
		{"/a/.%2e/b", nil, "", ErrDotSegment},
		{"/a/%2e./b", nil, "", ErrDotSegment},
		{"/a/...", []string{"a", "..."}, "", nil},
		{"/a/.b", []string{"a", ".b"}, "", nil},
		{"/a/%zz", nil, "", ErrBadEscape},
		{"/a/%2", nil, "", ErrBadEscape},
		{"/a/b%", nil, "", ErrBadEscape},
		{"/" + strings.Repeat("a/", MaxSegments) + "a", nil, "", ErrLongPath},
	} {
		var p Path
		err := p.ParsePath(c.raw)
		if err != c.err {
			t.Errorf("%q: error %v, want %v", c.raw, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		var segs []string
		for i := 0; i < p.Len(); i++ {
			segs = append(segs, p.Seg(i))
		}
		if !reflect.DeepEqual(segs, c.segs) || p.Query != c.query {
			t.Errorf("%q: segments %q query %q, want %q %q", c.raw, segs, p.Query, c.segs, c.query)
		}
	}
}

func TestPathValue(t *testing.T) {
	var p Path
	if err := p.ParsePath("/rooms/%21r%3Ahome.de/a%2Fb/%3F/plain+x"); err != nil {
		t.Fatal(err)
	}
	want := []string{"rooms", "!r:home.de", "a/b", "?", "plain+x"}
	for i, w := range want {
		if got := p.Value(i); got != w {
			t.Errorf("Value(%d) = %q, want %q", i, got, w)
		}
	}
}

func TestQueryValues(t *testing.T) {
	for _, c := range []struct {
		query string
		want  []string
		err   bool
	}{
		{"server_name=a.de&via=b.de&server_name=c.de", []string{"a.de", "c.de"}, false},
		{"server%5Fname=a.de", []string{"a.de"}, false},
		{"server_name=a%2Ede+x", []string{"a.de x"}, false},
		{"server_name", []string{""}, false},
		{"other=1", nil, false},
		{"server_name=a.de;server_name=b.de", nil, true},
		{"server_name=%zz", nil, true},
	} {
		got, err := QueryValues(nil, c.query, "server_name")
		if (err != nil) != c.err || !c.err && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %q, %v; want %q, error %v", c.query, got, err, c.want, c.err)
		}
	}
}

// FuzzParsePath: a path either is refused or splits into segments that
// join back to it, none of which decodes to a dot segment or is empty
// except a final one; routing it through the default tables never panics.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/_matrix/client/v3/sync?x", "/a/%2e%2E/b", "/a//b", "/a/", "/%zz", "/_matrix/federation/v2/invite/%21r/%3F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var p Path
		if p.ParsePath(raw) != nil {
			return
		}
		var segs []string
		for i := 0; i < p.Len(); i++ {
			s, v := p.Seg(i), p.Value(i)
			if v == "." || v == ".." || s == "" && i < p.Len()-1 {
				t.Fatalf("%q: segment %d %q (%q) accepted", raw, i, s, v)
			}
			segs = append(segs, s)
		}
		if got := "/" + strings.Join(segs, "/"); got != p.Raw {
			t.Fatalf("%q: segments join to %q, not %q", raw, got, p.Raw)
		}
		for _, r := range testRouters {
			r.Route("PUT", &p)
		}
	})
}
