package filter

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// TestMemoKeyDistinct: inputs that differ in any member of the input
// document but the opaque strings get different keys, also where plain
// concatenation would not tell them apart; the opaque strings (the path,
// the invitees' user IDs) are handed to the lookup in their input numbers.
func TestMemoKeyDistinct(t *testing.T) {
	base := facts{method: "GET", path: "/_matrix/client/v3/sync", host: "a.de", hostPort: "a.de", clientID: "c", route: matrix.Route{Name: "client_other", Endpoint: "/_matrix/client/v3/sync"}}
	variants := map[string]func(f *facts) bool{
		"base":                 func(f *facts) bool { return false },
		"method":               func(f *facts) bool { f.method = "PUT"; return false },
		"endpoint":             func(f *facts) bool { f.route.Endpoint += "x"; return false },
		"host port":            func(f *facts) bool { f.hostPort = "a.de:8448"; return false },
		"route":                func(f *facts) bool { f.route.Name = "login"; return false },
		"client id":            func(f *facts) bool { f.clientID = "d"; return false },
		"no client id":         func(f *facts) bool { f.clientID = ""; return false },
		"x-matrix":             func(f *facts) bool { f.hasXM, f.origin = true, "o.de"; return false },
		"x-matrix destination": func(f *facts) bool { f.hasXM, f.origin, f.destination = true, "o.de", "a.de"; return false },
		"x-matrix no domain":   func(f *facts) bool { f.hasXM, f.origin = true, "o o"; return false },
		"invite":               func(f *facts) bool { f.hasInvite, f.inviter, f.invitee = true, "@a:b.de", "@c:d.de"; return false },
		"invite swapped":       func(f *facts) bool { f.hasInvite, f.inviter, f.invitee = true, "@c:d.de", "@a:b.de"; return false },
		"one invitee":          func(f *facts) bool { f.invitees = []string{"@a:b.de"}; return false },
		"two invitees":         func(f *facts) bool { f.invitees = []string{"@a:b.de", "@c:d.de"}; return false },
		"expired":              func(f *facts) bool { return true },
		"endpoint into method": func(f *facts) bool { f.method, f.route.Endpoint = "GET/_matrix", "/client/v3/sync"; return false },
	}
	m := newMemo()
	seen := map[string]string{}
	for name, change := range variants {
		f := base
		expired := change(&f)
		k, ok := m.keyOf(&f, expired)
		if !ok {
			t.Fatalf("%s: no key", name)
		}
		enc := string(k.encode(nil))
		if other, dup := seen[enc]; dup {
			t.Errorf("%s and %s share a key", name, other)
		}
		seen[enc] = name
	}
	// The opaque strings are not in the key: they are the lookup's.
	f := base
	f.path, f.invitees = "/_matrix/client/v3/sync/other", []string{"@x:b.de"}
	g := f
	g.invitees = []string{"@y:c.de"}
	kf, _ := m.keyOf(&f, false)
	encF := string(kf.encode(nil))
	if got := strings.Join(m.opaque, " "); got != "/_matrix/client/v3/sync/other @x:b.de b.de" {
		t.Errorf("opaque strings %q", got)
	}
	if kg, _ := m.keyOf(&g, false); string(kg.encode(nil)) != encF || seen[encF] != "one invitee" {
		t.Error("the path or an invitee is in the key")
	}
	f.hasXM, f.origin, f.destination = true, "o.de:8448", "a.de"
	m.keyOf(&f, false)
	if got := strings.Join(m.opaque, " "); got != "/_matrix/client/v3/sync/other o.de:8448 o.de @x:b.de b.de" {
		t.Errorf("opaque strings with X-Matrix %q", got)
	}
	// A key equals exactly its own encoding, read in place.
	for name, change := range variants {
		f := base
		k, _ := m.keyOf(&f, change(&f))
		for enc, other := range seen {
			if got := k.equal([]byte(enc)); got != (other == name) {
				t.Errorf("key %s equal to the encoding of %s: %v", name, other, got)
			}
		}
	}
}

func TestMemo(t *testing.T) {
	f := facts{method: "GET", path: "/_matrix/client/v3/sync", hostPort: "a.de", clientID: "c", route: matrix.Route{Endpoint: "/_matrix/client/v3/sync"}}
	g := f
	g.clientID = "other"
	allow := decision{allow: true, check: checkDefault}
	deny := decision{status: 403, body: []byte(`{"errcode":"M_FORBIDDEN"}`), check: checkClientID}

	m := newMemo()
	k, _ := m.keyOf(&f, false)
	if _, h, ok := m.lookup(k, nil); ok {
		t.Fatal("hit in an empty memo")
	} else {
		m.store(k, h, allow, nil)
	}
	k2, _ := m.keyOf(&g, false)
	_, h2, _ := m.lookup(k2, nil)
	m.store(k2, h2, deny, nil)

	for _, r := range []struct {
		name string
		f    *facts
		want decision
	}{{"first", &f, allow}, {"second", &g, deny}} {
		k, _ := m.keyOf(r.f, false)
		d, _, ok := m.lookup(k, nil)
		if !ok || d.allow != r.want.allow || d.check != r.want.check || string(d.body) != string(r.want.body) {
			t.Errorf("%s: got %+v %v, want %+v", r.name, d, ok, r.want)
		}
	}
	if k, _ := m.keyOf(&f, true); func() bool { _, _, ok := m.lookup(k, nil); return ok }() {
		t.Error("the decision of a current list answered for an expired one")
	}

	m.clear()
	k, _ = m.keyOf(&f, false)
	if _, _, ok := m.lookup(k, nil); ok {
		t.Error("hit after clear")
	}

	long := f
	long.route.Endpoint = "/" + strings.Repeat("a", memoMaxKey)
	if _, ok := m.keyOf(&long, false); ok {
		t.Error("a key over memoMaxKey was accepted")
	}
	// Strings of 128 bytes and more have two-byte length prefixes.
	mid := f
	mid.route.Endpoint = "/" + strings.Repeat("b", 300)
	k, _ = m.keyOf(&mid, false)
	if _, h, ok := m.lookup(k, nil); ok {
		t.Error("hit for a new long endpoint")
	} else {
		m.store(k, h, deny, nil)
	}
	if k, _ = m.keyOf(&mid, false); func() bool { d, _, ok := m.lookup(k, nil); return !ok || d.allow }() {
		t.Error("a long endpoint was not remembered")
	}
	mid.route.Endpoint = "/" + strings.Repeat("b", 299) + "c"
	if k, _ = m.keyOf(&mid, false); func() bool { _, _, ok := m.lookup(k, nil); return ok }() {
		t.Error("a long endpoint answered for another of the same length")
	}
	// A decision remembered for exactly its opaque strings (planvm.Exact)
	// answers for those and no others.
	exact := f
	exact.route.Endpoint, exact.path = "/send/{txnId}", "/send/1"
	k, _ = m.keyOf(&exact, false)
	_, h, _ := m.lookup(k, m.opaque)
	m.store(k, h, deny, planvm.Exact(nil, m.opaque))
	for path, want := range map[string]bool{"/send/1": true, "/send/2": false, "/send/10": false} {
		exact.path = path
		k, _ = m.keyOf(&exact, false)
		if _, _, ok := m.lookup(k, m.opaque); ok != want {
			t.Errorf("exact decision for %s: hit %v", path, ok)
		}
	}
	many := f
	for i := 0; i <= memoMaxInvitees; i++ {
		many.invitees = append(many.invitees, "@a:b.de")
	}
	if _, ok := m.keyOf(&many, false); ok {
		t.Error("a key of more than memoMaxInvitees invitees was accepted")
	}
	if k, ok := m.keyOf(&f, false); !ok || k.n == 0 {
		t.Error("no key after a long one")
	}
}

// TestMemoBounded: however many distinct inputs pass, the memo holds at most
// memoSlots entries, and a slot's key buffer is reused.
func TestMemoBounded(t *testing.T) {
	m := newMemo()
	f := facts{method: "PUT", hostPort: "a.de"}
	for i := 0; i < 10*memoSlots; i++ {
		f.path = "/_matrix/client/v3/rooms/!r:a.de/send/m.room.message/" + itoa(i)
		k, _ := m.keyOf(&f, false)
		if _, h, ok := m.lookup(k, nil); !ok {
			m.store(k, h, decision{allow: true}, nil)
		}
	}
	if len(m.slots) != memoSlots {
		t.Fatalf("%d slots", len(m.slots))
	}
	allocs := testing.AllocsPerRun(100, func() {
		f.path = "/_matrix/client/v3/rooms/!r:a.de/send/m.room.message/x"
		k, _ := m.keyOf(&f, false)
		if _, h, ok := m.lookup(k, nil); !ok {
			m.store(k, h, decision{allow: true}, nil)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per lookup and store", allocs)
	}
}

// TestMemoHeaderKey: header values that differ give different header keys;
// Authorization values count only through the X-Matrix origin and
// destination (never the signature or a Bearer token); and no header key
// equals a facts key.
func TestMemoHeaderKey(t *testing.T) {
	base := headerValues{method: "GET", path: "/_matrix/client/v3/sync", hostPort: "a.de", ua: "X/1,c"}
	withXM := func(r *headerValues, origin, destination string) {
		r.xmatrix, r.hasXM = true, true
		r.origin, r.destination = origin, destination
	}
	variants := map[string]func(r *headerValues) bool{
		"base":              func(r *headerValues) bool { return false },
		"method":            func(r *headerValues) bool { r.method = "HEAD"; return false },
		"path":              func(r *headerValues) bool { r.path += "/x"; return false },
		"host":              func(r *headerValues) bool { r.hostPort = "a.de:443"; return false },
		"ua":                func(r *headerValues) bool { r.ua = "X/1,d"; return false },
		"x-tim-ua":          func(r *headerValues) bool { r.timUA = "c"; return false },
		"ti-ua":             func(r *headerValues) bool { r.tiUA = "c"; return false },
		"ua shifted":        func(r *headerValues) bool { r.ua, r.timUA = "X/1,", "c"; return false },
		"expired":           func(r *headerValues) bool { return true },
		"x-matrix":          func(r *headerValues) bool { withXM(r, "b.de", "a.de"); return false },
		"x-matrix origin":   func(r *headerValues) bool { withXM(r, "c.de", "a.de"); return false },
		"x-matrix dest.":    func(r *headerValues) bool { withXM(r, "b.de", "d.de"); return false },
		"x-matrix no dest.": func(r *headerValues) bool { withXM(r, "b.de", ""); return false },
		"x-matrix shifted":  func(r *headerValues) bool { withXM(r, "b.dea.de", ""); return false },
		"x-matrix POST":     func(r *headerValues) bool { r.method = "POST"; withXM(r, "b.de", "a.de"); return false },
	}
	m := newMemo()
	seen := map[string]string{}
	for name, change := range variants {
		r := base
		expired := change(&r)
		k, ok := m.rawKeyOf(&r, expired)
		if !ok {
			t.Fatalf("%s: no key", name)
		}
		if k.flags&rawFlag == 0 {
			t.Errorf("%s: header key without rawFlag", name)
		}
		enc := string(k.encode(nil))
		if other, dup := seen[enc]; dup {
			t.Errorf("%s and %s share a key", name, other)
		}
		seen[enc] = name
	}
	// Unreadable X-Matrix values give no facts: the request's facts, and
	// so its key, are those of the same request without them.
	r := base
	r.xmatrix = true
	k1, _ := m.rawKeyOf(&r, false)
	enc := k1.encode(nil)
	if k2, _ := m.rawKeyOf(&base, false); !k2.equal(enc) {
		t.Error("unreadable X-Matrix values changed the header key")
	}
	r = base
	for _, method := range []string{"PUT", "POST", "get"} {
		r.method = method
		if _, ok := m.rawKeyOf(&r, false); ok {
			t.Errorf("a header key for %s without X-Matrix", method)
		}
	}
	// Federation PUTs carry an id in the path: never a header key.
	r.method = "PUT"
	withXM(&r, "b.de", "a.de")
	if _, ok := m.rawKeyOf(&r, false); ok {
		t.Error("a header key for PUT with X-Matrix")
	}
	var f facts
	f.fromHeaders([][2]string{{":method", "GET"}, {":path", "/"}}, "client")
	if k, _ := m.keyOf(&f, true); k.flags&rawFlag != 0 {
		t.Error("a facts key with rawFlag")
	}
}

// TestDetach: a decision's strings that are views of the stream's buffers
// are copied before the memo keeps them (the buffers are wiped when the
// request ends); the policy's own strings are kept as they are.
func TestDetach(t *testing.T) {
	s := &stream{headerBuf: []byte("x-matrix origin=a.example.de"), bodyBuf: []byte(`{"invite":["@b:b.de"]}`)}
	own := "origin not in federation"
	d := s.detach(decision{
		reason: unsafe.String(&s.headerBuf[16], 12), // a.example.de
		ask:    unsafe.String(&s.bodyBuf[12], 8),    // @b:b.de"
	})
	kept := s.detach(decision{reason: own})
	clear(s.headerBuf)
	clear(s.bodyBuf)
	if d.reason != "a.example.de" || d.ask != `@b:b.de"` {
		t.Errorf("detached strings changed with the buffers: %q, %q", d.reason, d.ask)
	}
	if unsafe.StringData(kept.reason) != unsafe.StringData(own) {
		t.Error("a string of the policy's own was copied")
	}
}

// TestMemoAdmission: one-off keys (sends with new transaction ids) do not
// evict keys that repeat; a key that misses twice takes an occupied slot.
func TestMemoAdmission(t *testing.T) {
	m := newMemo()
	f := facts{method: "GET", hostPort: "a.de"}
	// Each path stands for an endpoint of its own (the path itself is not in
	// the key).
	miss := func(path string) bool { // lookup, and store on a miss; reports a hit
		f.route.Endpoint = path
		k, _ := m.keyOf(&f, false)
		if _, h, ok := m.lookup(k, nil); ok {
			return true
		} else {
			m.store(k, h, decision{allow: true}, nil)
		}
		return false
	}
	hits := func(path string) bool {
		f.route.Endpoint = path
		k, _ := m.keyOf(&f, false)
		_, _, ok := m.lookup(k, nil)
		return ok
	}
	var repeating []string
	for i := 0; i < memoSlots/2; i++ {
		repeating = append(repeating, "/_matrix/client/v3/profile/@u"+itoa(i)+":a.de")
	}
	for round := 0; round < 3; round++ {
		for _, p := range repeating {
			miss(p)
		}
	}
	var held []string
	for _, p := range repeating {
		if hits(p) {
			held = append(held, p)
		}
	}
	if len(held) < len(repeating)/2 {
		t.Fatalf("%d of %d repeating keys held", len(held), len(repeating))
	}
	m.takeStats()
	for i := 0; i < 100*memoSlots; i++ {
		if miss("/_matrix/client/v3/rooms/!r:a.de/send/m.room.message/" + itoa(i)) {
			t.Fatal("a one-off key hit")
		}
	}
	if st := m.takeStats(); st.evictions != 0 || st.skipped == 0 {
		t.Errorf("one-off keys: %+v", st)
	}
	for _, p := range held {
		if !hits(p) {
			t.Errorf("%s evicted by one-off keys", p)
		}
	}
	// A key that misses twice replaces what its slot holds.
	full := 0
	for i := 0; i < 4*memoSlots && full == 0; i++ {
		p := "/x/" + itoa(i)
		f.route.Endpoint = p
		k, _ := m.keyOf(&f, false)
		if _, h, _ := m.lookup(k, nil); m.full(h) {
			full++
			if miss(p) || hits(p) {
				t.Fatal("a first miss took an occupied slot")
			}
			if miss(p) || !hits(p) {
				t.Error("a second miss did not take its slot")
			}
		}
	}
	if full == 0 {
		t.Fatal("no occupied slot found")
	}
}

// TestMemoPairHoldsTwo: two keys that repeat and whose hashes pick the
// same pair of slots are both held, whatever else misses in between.
func TestMemoPairHoldsTwo(t *testing.T) {
	m := newMemo()
	f := facts{method: "GET", hostPort: "a.de"}
	hashOf := func(ep string) uint64 {
		f.route.Endpoint = ep
		k, _ := m.keyOf(&f, false)
		_, h, _ := m.lookup(k, nil)
		return h
	}
	pair := func(h uint64) uint64 { return h & (memoSlots/2 - 1) }
	a := "/a"
	var b string
	for i := 0; b == ""; i++ {
		if ep := "/b" + itoa(i); pair(hashOf(ep)) == pair(hashOf(a)) {
			b = ep
		}
	}
	for _, ep := range []string{a, b} {
		f.route.Endpoint = ep
		k, _ := m.keyOf(&f, false)
		_, h, _ := m.lookup(k, nil)
		if m.store(k, h, decision{allow: true, reason: ep}, nil) == nil {
			t.Fatalf("%s not stored in an empty pair", ep)
		}
	}
	for round := 0; round < 3; round++ {
		for _, ep := range []string{a, b} {
			f.route.Endpoint = ep
			k, _ := m.keyOf(&f, false)
			if d, _, ok := m.lookup(k, nil); !ok || d.reason != ep {
				t.Fatalf("round %d: %s not held beside the other key of its pair", round, ep)
			}
		}
	}
}
