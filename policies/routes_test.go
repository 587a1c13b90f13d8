package policies

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/wasm/matrix"
)

// The route-coverage test: every route that Synapse and Dendrite v0.13.8
// register (testdata/routes/*.txt, extracted from their sources by
// testdata/routes/extract.py) is either in the endpoint table of exactly the
// listener its API belongs to (data.json config.endpoints) or named in
// testdata/routes/denied.txt with the reason it is not forwarded. A route
// that is neither fails the test: a homeserver upgrade that adds endpoints
// must be classified before the proxy forwards them.

// hsRoute is one route of a homeserver's table.
type hsRoute struct {
	source, method, template string
}

func readRoutes(t testing.TB) []hsRoute {
	t.Helper()
	var out []hsRoute
	for _, name := range []string{"dendrite.txt", "synapse.txt", "synapse-sso.txt"} {
		f, err := os.Open("testdata/routes/" + name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			method, tpl, ok := strings.Cut(line, " ")
			if !ok {
				t.Fatalf("%s: bad line %q", name, line)
			}
			for _, p := range expandTemplate(tpl) {
				out = append(out, hsRoute{name, method, p})
			}
		}
		f.Close()
	}
	if len(out) < 300 {
		t.Fatalf("only %d routes read", len(out))
	}
	return out
}

// expandTemplate writes out the alternatives "a|b" of a template.
func expandTemplate(tpl string) []string {
	out := []string{""}
	for _, s := range strings.Split(tpl[1:], "/") {
		alts := []string{s}
		if !strings.HasPrefix(s, "{") {
			alts = strings.Split(s, "|")
		}
		var next []string
		for _, o := range out {
			for _, a := range alts {
				next = append(next, o+"/"+a)
			}
		}
		out = next
	}
	return out
}

// samplePath fills a template's variables with plain values.
func samplePath(tpl string) string {
	return regexp.MustCompile(`\{[^}]*\}`).ReplaceAllStringFunc(tpl, func(v string) string {
		if strings.HasSuffix(v, "...}") {
			return "a/b"
		}
		return "x1"
	})
}

type endpointTables struct {
	Config struct {
		Endpoints map[string]map[string]map[string]bool `json:"endpoints"`
	} `json:"config"`
}

func loadTables(t testing.TB) (endpointTables, map[string]*matrix.Router) {
	t.Helper()
	raw, err := os.ReadFile("data.json")
	if err != nil {
		t.Fatal(err)
	}
	var d endpointTables
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	routers := map[string]*matrix.Router{}
	for dir, table := range d.Config.Endpoints {
		var ts []string
		for k := range table {
			ts = append(ts, k)
		}
		sort.Strings(ts)
		r, err := matrix.NewRouter(ts)
		if err != nil {
			t.Fatalf("endpoints.%s: %v", dir, err)
		}
		routers[dir] = r
	}
	return d, routers
}

// denials are the prefixes of testdata/routes/denied.txt.
func denials(t testing.TB) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("testdata/routes/denied.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		prefix, why, _ := strings.Cut(line, " ")
		if strings.TrimSpace(why) == "" {
			t.Fatalf("denied.txt: %q without a reason", line)
		}
		out[prefix] = why
	}
	return out
}

// listenerOf is the listener whose API a path belongs to.
func listenerOf(p string) string {
	switch {
	case strings.HasPrefix(p, "/_matrix/federation/"), strings.HasPrefix(p, "/_matrix/key/"), p == "/.well-known/matrix/server":
		return "federation"
	default:
		return "client"
	}
}

func TestRouteCoverage(t *testing.T) {
	d, routers := loadTables(t)
	denied := denials(t)
	usedDenials := map[string]bool{}
	var unclassified []string
	for _, r := range readRoutes(t) {
		path := samplePath(r.template)
		var p matrix.Path
		if err := p.ParsePath(path); err != nil {
			t.Errorf("%s %s %s: sample path refused: %v", r.source, r.method, r.template, err)
			continue
		}
		allowedOn := ""
		for _, dir := range []string{"client", "federation"} {
			rt := routers[dir].Route(r.method, &p)
			if rt.Endpoint != "" && d.Config.Endpoints[dir][rt.Endpoint][r.method] {
				allowedOn += dir
			}
		}
		switch {
		case allowedOn == "" || allowedOn == "clientfederation" && r.template == "/.well-known/matrix/server":
		case allowedOn != listenerOf(r.template):
			t.Errorf("%s %s %s: allowed on the %s listener, its API belongs to the %s listener", r.source, r.method, r.template, allowedOn, listenerOf(r.template))
		}
		if allowedOn != "" {
			continue
		}
		found := false
		for prefix := range denied {
			if strings.HasPrefix(r.template, prefix) || strings.HasPrefix(r.method+" "+r.template, prefix) {
				found, usedDenials[prefix] = true, true
			}
		}
		if !found {
			unclassified = append(unclassified, r.source+": "+r.method+" "+r.template)
		}
	}
	sort.Strings(unclassified)
	for _, u := range unclassified {
		t.Errorf("unclassified route (add it to config.endpoints or testdata/routes/denied.txt): %s", u)
	}
	for prefix := range denied {
		if !usedDenials[prefix] {
			t.Errorf("denied.txt: %q denies no route", prefix)
		}
	}
}

// TestEndpointTablesSeparateListeners: no endpoint of one listener's API
// is in the other listener's table.
func TestEndpointTablesSeparateListeners(t *testing.T) {
	d, _ := loadTables(t)
	for dir, table := range d.Config.Endpoints {
		for tpl := range table {
			for _, p := range expandTemplate(tpl) {
				if p != "/.well-known/matrix/server" && listenerOf(p) != dir {
					t.Errorf("endpoints.%s holds %s", dir, p)
				}
			}
		}
	}
}
