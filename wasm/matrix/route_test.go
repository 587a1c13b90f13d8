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

// TestClassifyGolden runs every request of testdata/routes.txt.
func TestClassifyGolden(t *testing.T) {
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
		r := Classify(method, path)
		fmt.Fprintf(&out, "%-7s %-80s -> name=%s api=%s version=%q media=%q state_key=%q body=%v\n",
			method, path, r.Name, r.API, r.Version, r.MediaServer, r.StateKey, r.NeedsBody)
	}
	golden(t, "routes.golden", out.Bytes())
}

// TestClassifyKeyRoutes states the routes the policy depends on most, so a
// regenerated golden file cannot silently lose them.
func TestClassifyKeyRoutes(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         Route
	}{
		{"POST", "/_matrix/client/v3/createRoom", Route{Name: RouteCreateRoom, API: APIClient, Version: "v3", NeedsBody: true}},
		{"POST", "/_matrix/client/v3/createRoom/", Route{Name: RouteCreateRoom, API: APIClient, Version: "v3", NeedsBody: true}},
		{"POST", "/_matrix/client/r0/rooms/!r:x.de/invite", Route{Name: RouteInvite, API: APIClient, Version: "r0", NeedsBody: true}},
		{"PUT", "/_matrix/federation/v2/invite/!r:x.de/$e", Route{Name: RouteFederationInvite, API: APIFederation, Version: "v2", NeedsBody: true}},
		{"PUT", "/_matrix/federation/v1/invite/!r:x.de/$e", Route{Name: RouteFederationInvite, API: APIFederation, Version: "v1", NeedsBody: true}},
		{"GET", "/_matrix/media/v3/download/m.de/id", Route{Name: RouteMedia, API: APIMedia, Version: "v3", MediaServer: "m.de"}},
		{"GET", "/_matrix/client/v1/media/thumbnail/m.de/id", Route{Name: RouteMedia, API: APIMedia, Version: "v1", MediaServer: "m.de"}},
		{"GET", "/.well-known/matrix/server", Route{Name: RouteWellKnownServer, API: APIWellKnown}},
		{"GET", "/_matrix/federation/v1/openid/userinfo", Route{Name: RouteOpenIDUserinfo, API: APIFederation, Version: "v1"}},
		{"POST", "/_matrix/client/v3/login", Route{Name: RouteLogin, API: APIClient, Version: "v3"}},
		{"GET", "/_matrix/federation/v1/send/1", Route{Name: RouteFederationOther, API: APIFederation, Version: "v1"}},
	} {
		if got := Classify(c.method, c.path); got != c.want {
			t.Errorf("Classify(%s %s) = %+v, want %+v", c.method, c.path, got, c.want)
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		Classify("GET", "/_matrix/client/v1/media/download/media.example.de/abc")
		Classify("POST", "/_matrix/client/v3/rooms/!r:x.de/invite")
	})
	if n != 0 {
		t.Errorf("Classify allocates %.0f times", n)
	}
}
