package policies

import (
	"math/rand"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/wasm/matrix"
)

// The filter's routing against the homeservers' own: a reference router
// built from the route tables of Synapse and Dendrite (testdata/routes),
// matching as they do — a regular expression per route over the raw path,
// "[^/]*" per variable, the variables decoded after the match. Whenever the
// filter forwards a path (canonical, in the listener's table, method
// allowed), a homeserver route of the same shape must match it, and the
// facts the filter read from the path (room, media server, state key) must
// be what that route hands its handler.

type refRoute struct {
	method string
	shape  string // the template with every variable written "{}"
	rx     *regexp.Regexp
}

var varRx = regexp.MustCompile(`\{[^}]*\}`)

func shapeOf(tpl string) string { return varRx.ReplaceAllString(tpl, "{}") }

func refRoutes(t testing.TB) []refRoute {
	var out []refRoute
	for _, r := range readRoutes(t) {
		var b strings.Builder
		b.WriteString("^")
		rest := r.template
		for rest != "" {
			loc := varRx.FindStringIndex(rest)
			if loc == nil {
				b.WriteString(regexp.QuoteMeta(rest))
				break
			}
			b.WriteString(regexp.QuoteMeta(rest[:loc[0]]))
			v := rest[loc[0]+1 : loc[1]-1]
			if strings.HasSuffix(v, "...") {
				b.WriteString("(?P<" + strings.TrimSuffix(v, "...") + ">.*)")
			} else {
				b.WriteString("(?P<" + v + ">[^/]*)")
			}
			rest = rest[loc[1]:]
		}
		b.WriteString("$")
		out = append(out, refRoute{r.method, shapeOf(r.template), regexp.MustCompile(b.String())})
	}
	return out
}

// agree checks one path on one listener.
func agree(t *testing.T, refs []refRoute, d endpointTables, routers map[string]*matrix.Router, method, raw string) {
	for _, dir := range []string{"client", "federation"} {
		var p matrix.Path
		if p.ParsePath(raw) != nil {
			return // refused with 400: nothing forwarded
		}
		rt := routers[dir].Route(method, &p)
		if rt.Endpoint == "" || !d.Config.Endpoints[dir][rt.Endpoint][method] {
			continue // 404/405: nothing forwarded
		}
		shapes := map[string]bool{}
		for _, s := range expandTemplate(rt.Endpoint) {
			shapes[shapeOf(s)] = true
		}
		matched := false
		for _, ref := range refs {
			if ref.method != method || !shapes[ref.shape] {
				continue
			}
			m := ref.rx.FindStringSubmatch(p.Raw)
			if m == nil {
				continue
			}
			matched = true
			vars := map[string]string{}
			for i, name := range ref.rx.SubexpNames() {
				if name != "" {
					v, err := url.PathUnescape(m[i])
					if err != nil {
						t.Fatalf("%s %s: reference could not decode %q", method, raw, m[i])
					}
					vars[strings.ToLower(strings.ReplaceAll(name, "_", ""))] = v
				}
			}
			check := func(what, got string, names ...string) {
				if got == "" {
					return
				}
				for _, n := range names {
					if v, ok := vars[n]; ok {
						if v != got {
							t.Errorf("%s %s on %s: filter read %s %q, the homeserver route %s reads %q", method, raw, dir, what, got, ref.shape, v)
						}
						return
					}
				}
				t.Errorf("%s %s on %s: filter read %s %q, the homeserver route %s has no such variable", method, raw, dir, what, got, ref.shape)
			}
			check("room", rt.RoomID, "roomid", "roomidoralias", "roomidentifier")
			check("media server", rt.MediaServer, "servername")
			check("state key", rt.StateKey, "statekey")
		}
		if !matched {
			t.Errorf("%s %s: the filter forwards it on the %s listener as %s, no homeserver route of that shape matches", method, raw, dir, rt.Endpoint)
		}
	}
}

// pathWords are the segments paths are made of: the tables' literals,
// versions, dot segments in every spelling, escapes that homeservers treat
// specially, and identifiers.
var pathWords = []string{
	"_matrix", "client", "federation", "media", "key", ".well-known", "matrix", "server",
	"r0", "v1", "v2", "v3", "unstable", "api", "versions",
	"rooms", "invite", "join", "knock", "state", "m.room.member", "m.room%2Emember", "createRoom", "send", "sync",
	"download", "thumbnail", "org.matrix.msc3916", "make_join", "send_join", "exchange_third_party_invite", "openid", "userinfo",
	".", "..", "%2e", "%2E%2e", ".%2e", "%2F", "%3F", "%23", "%25", "a%2Fb", "%3Finvite", "invite%3F", "%69nvite",
	"!r:home.de", "%21r%3Ahome.de", "@u:evil.de", "%40u%3Aevil.de", "evil.de", "evil.de%3F", "$ev", "txn1", "",
}

// genPath makes a path from a homeserver route: its variables filled with
// words, and now and then a segment replaced, inserted or dropped, or the
// version changed.
func genPath(r *rand.Rand, routes []hsRoute) (method, raw string) {
	route := routes[r.Intn(len(routes))]
	segs := strings.Split(route.template[1:], "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = pathWords[r.Intn(len(pathWords))]
		}
	}
	switch r.Intn(6) {
	case 0:
		segs[r.Intn(len(segs))] = pathWords[r.Intn(len(pathWords))]
	case 1:
		i := r.Intn(len(segs) + 1)
		segs = append(segs[:i], append([]string{pathWords[r.Intn(len(pathWords))]}, segs[i:]...)...)
	case 2:
		if len(segs) > 2 {
			i := r.Intn(len(segs))
			segs = append(segs[:i], segs[i+1:]...)
		}
	case 3:
		if len(segs) > 2 {
			segs[2] = []string{"r0", "v1", "v2", "v3", "unstable", "api", "V3", "v3%00"}[r.Intn(8)]
		}
	}
	raw = "/" + strings.Join(segs, "/")
	if r.Intn(5) == 0 {
		raw += "?server_name=evil.de"
	}
	method = route.method
	if r.Intn(8) == 0 {
		method = []string{"GET", "PUT", "POST", "DELETE"}[r.Intn(4)]
	}
	return method, raw
}

// TestRoutesAgreeWithHomeservers runs a fixed number of generated paths
// (deterministic, so a failure repeats).
func TestRoutesAgreeWithHomeservers(t *testing.T) {
	refs := refRoutes(t)
	d, routers := loadTables(t)
	r := rand.New(rand.NewSource(1))
	routes := readRoutes(t)
	forwarded := 0
	for i := 0; i < 20000; i++ {
		method, raw := genPath(r, routes)
		agree(t, refs, d, routers, method, raw)
		var p matrix.Path
		if p.ParsePath(raw) == nil && routers["client"].Route(method, &p).Endpoint != "" {
			forwarded++
		}
	}
	if forwarded < 5000 {
		t.Errorf("only %d of the generated paths reach an endpoint: the generator does not exercise the router", forwarded)
	}
	// Paths built from the tables themselves, with escaped variables.
	for _, route := range routes {
		for _, fill := range []string{"x1", "%21r%3Ahome.de", "a%2Fb", "%3F", "evil.de"} {
			raw := varRx.ReplaceAllString(route.template, fill)
			agree(t, refs, d, routers, route.method, raw)
		}
	}
}

func FuzzRoutesAgreeWithHomeservers(f *testing.F) {
	refs := refRoutes(f)
	d, routers := loadTables(f)
	for _, s := range []string{
		"/_matrix/client/v3/rooms/%21r%3Ahome.de/invite",
		"/_matrix/media/v3/download/evil.de/%3Fabc",
		"/_matrix/client/v3/./createRoom",
		"/_matrix/client/v3/rooms/!r:home.de/state/m.room%2Emember/%40u%3Aevil.de",
		"/_matrix/federation/v2/invite/!r:home.de/%3F",
	} {
		f.Add("PUT", s)
		f.Add("POST", s)
	}
	f.Fuzz(func(t *testing.T, method, raw string) {
		if len(raw) > 512 {
			return
		}
		agree(t, refs, d, routers, method, raw)
	})
}
