package matrix

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file; got:\n%s", name, got)
	}
}

// TestRouteGolden routes every request of testdata/routes.txt through the
// default endpoint tables (policies/data.json): client table first, then
// the server-server one.
func TestRouteGolden(t *testing.T) {
	f, err := os.Open("testdata/routes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		method, path, _ := strings.Cut(line, " ")
		r := testRoute(method, path)
		fmt.Fprintf(&out, "%-7s %-80s -> name=%s api=%s endpoint=%q version=%q media=%q room=%q state_key=%q member=%v body=%v\n",
			method, path, r.Name, r.API, r.Endpoint, r.Version, r.MediaServer, r.RoomID, r.StateKey, r.Member, r.NeedsBody)
	}
	golden(t, "routes.golden", out.Bytes())
}

// TestKeyRoutes states the routes the policy depends on most, so a
// regenerated golden file cannot silently lose them.
func TestKeyRoutes(t *testing.T) {
	for _, c := range []struct {
		method, path string
		name, media  string
		body         bool
	}{
		{"POST", "/_matrix/client/v3/createRoom", RouteCreateRoom, "", true},
		{"PUT", "/_matrix/client/v3/createRoom/t1", RouteCreateRoom, "", true},
		{"POST", "/_matrix/client/r0/rooms/!r:x.de/invite", RouteInvite, "", true},
		{"PUT", "/_matrix/client/v3/rooms/!r:x.de/invite/t1", RouteInvite, "", true},
		{"PUT", "/_matrix/client/v3/rooms/!r:x.de/state/m.room.member/@u:x.de", RouteInvite, "", true},
		{"POST", "/_matrix/client/v3/join/!r:x.de", RouteJoin, "", false},
		{"POST", "/_matrix/client/v3/knock/!r:x.de", RouteJoin, "", false},
		{"POST", "/_matrix/client/v3/rooms/!r:x.de/join", RouteJoin, "", false},
		{"PUT", "/_matrix/federation/v2/invite/!r:x.de/$e", RouteFederationInvite, "", true},
		{"PUT", "/_matrix/federation/v1/invite/!r:x.de/$e", RouteFederationInvite, "", true},
		{"PUT", "/_matrix/federation/v1/exchange_third_party_invite/!r:x.de", RouteFederationThirdParty, "", false},
		{"GET", "/_matrix/federation/v1/make_join/!r:x.de/@u:y.de", RouteFederationJoin, "", false},
		{"GET", "/_matrix/media/v3/download/m.de/id", RouteMedia, "m.de", false},
		{"GET", "/_matrix/client/v1/media/thumbnail/m.de/id", RouteMedia, "m.de", false},
		{"GET", "/.well-known/matrix/server", RouteWellKnownServer, "", false},
		{"GET", "/_matrix/federation/v1/openid/userinfo", RouteOpenIDUserinfo, "", false},
		{"POST", "/_matrix/client/v3/login", RouteLogin, "", false},
		{"GET", "/_matrix/client/versions", RouteVersions, "", false},
		{"PUT", "/_matrix/federation/v1/send/1", RouteFederationOther, "", false},
		{"POST", "/_matrix/client/api/v1/createRoom", RouteUnknown, "", false},
		{"POST", "/_matrix/client/v3/createRoom/", RouteUnknown, "", false},
	} {
		r := testRoute(c.method, c.path)
		if r.Name != c.name || r.MediaServer != c.media || r.NeedsBody != c.body {
			t.Errorf("%s %s = %+v, want route %s media %q body %v", c.method, c.path, r, c.name, c.media, c.body)
		}
	}
}

func TestRouteAllocs(t *testing.T) {
	r := testRouters["client"]
	var a, b Path
	if a.ParsePath("/_matrix/client/v1/media/download/media.example.de/abc") != nil || b.ParsePath("/_matrix/client/v3/rooms/!r:x.de/invite") != nil {
		t.Fatal("paths refused")
	}
	n := testing.AllocsPerRun(100, func() {
		r.Route("GET", &a)
		r.Route("POST", &b)
		a.ParsePath("/_matrix/client/v1/media/download/media.example.de/abc")
	})
	if n != 0 {
		t.Errorf("routing allocates %.0f times", n)
	}
}
