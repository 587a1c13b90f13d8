package filter

import (
	"os"
	"unsafe"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
	"slices"
	"strings"
	"testing"
)

// fromHeaders reads the facts of request headers as OnHttpRequestHeaders
// does, with the default endpoint table of the direction. It reports false
// when the path is not canonical.
func (f *facts) fromHeaders(hs [][2]string, direction string) bool {
	var r headerValues
	r.collect(hs)
	return f.fromValues(&r, defaultRouter(direction), nil) == nil
}

var routers = map[string]*matrix.Router{}

// defaultRouter is the router of policies/data.json's table for direction.
func defaultRouter(direction string) *matrix.Router {
	if r, ok := routers[direction]; ok {
		return r
	}
	raw, err := os.ReadFile("../../policies/data.json")
	if err != nil {
		panic(err)
	}
	data, err := planvm.ParseJSON(raw)
	if err != nil {
		panic(err)
	}
	r, err := endpointRouter(data, direction)
	if err != nil {
		panic(err)
	}
	routers[direction] = r
	return r
}

// TestCollect: each header the facts come from is read by its exact name,
// names of the same length are not mistaken for it, the first host wins,
// the query is dropped and X-Matrix is read from the Authorization values.
func TestCollect(t *testing.T) {
	xm := `X-Matrix origin="a.example.de",destination="b.example.de",key="ed25519:a",sig="c2ln"`
	hs := [][2]string{
		{":scheme", "https"}, {":method", "PUT"}, {":path", "/p?q=1"}, {"x-path", "/no"},
		{"host", "h.example.de"}, {":authority", "other.example.de"}, {"user-agen", "no"}, {"user-agent", "U/1,c"},
		{"x-tim-user-agent", "tim"}, {"x-tim-user-agenx", "no"}, {"ti-user-agent", "ti"}, {"authorization", "Bearer t"},
		{"authorizatioN", xm}, {"authorization", xm}, {":methox", "GET"},
	}
	var r headerValues
	r.collect(hs)
	want := headerValues{method: "PUT", path: "/p", rawPath: "/p?q=1", hostPort: "h.example.de", ua: "U/1,c", timUA: "tim", tiUA: "ti",
		xmatrix: true, hasXM: true, origin: "a.example.de", destination: "b.example.de"}
	if r != want {
		t.Errorf("collect = %+v, want %+v", r, want)
	}
	// Key id and signature, which differ per request, are not collected.
	other := slices.Clone(hs)
	other[13][1] = strings.Replace(xm, `key="ed25519:a",sig="c2ln"`, `key="ed25519:b",sig="b3RoZXI"`, 1)
	var r2 headerValues
	r2.collect(other)
	if r2 != want {
		t.Errorf("collect with another signature = %+v, want %+v", r2, want)
	}
	// Without X-Matrix the Authorization values give nothing.
	r = headerValues{}
	r.collect([][2]string{{":authority", "a.de"}, {"host", "b.de"}, {"authorization", "Bearer t"}})
	if r != (headerValues{hostPort: "a.de"}) {
		t.Errorf("collect = %+v", r)
	}
	// Unreadable X-Matrix: named, but no facts.
	r = headerValues{}
	r.collect([][2]string{{"authorization", `X-Matrix origin=`}})
	if !r.xmatrix || r.hasXM {
		t.Errorf("collect = %+v", r)
	}
}

// TestHostCache: the cached names equal the computed ones, follow a changed
// :authority, and are copies (the request's buffer is wiped when it ends).
func TestHostCache(t *testing.T) {
	var c hostCache
	buf := []byte("Matrix.Home.example.de:443")
	for i := 0; i < 2; i++ {
		hp, h := c.names(string(buf[:]))
		if hp != "matrix.home.example.de:443" || h != "matrix.home.example.de" {
			t.Fatalf("names %q %q", hp, h)
		}
	}
	raw := unsafe.String(&buf[0], len(buf))
	hp, h := c.names(raw)
	clear(buf)
	if hp != "matrix.home.example.de:443" || h != "matrix.home.example.de" {
		t.Errorf("cached names changed with the request's buffer: %q %q", hp, h)
	}
	for _, raw := range []string{"partner.de", "[::1]:8448", "not a host", ""} {
		wantHP, wantH := (*hostCache)(nil).names(raw)
		if hp, h := c.names(raw); hp != wantHP || h != wantH {
			t.Errorf("%q: cached %q %q, computed %q %q", raw, hp, h, wantHP, wantH)
		}
	}
}
