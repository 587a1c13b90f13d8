package matrix

import (
	"encoding/json"
	"os"
	"sort"
)

// testRouters are the routers of policies/data.json's endpoint tables.
var testRouters = func() map[string]*Router {
	raw, err := os.ReadFile("../../policies/data.json")
	if err != nil {
		panic(err)
	}
	var d struct {
		Config struct {
			Endpoints map[string]map[string]any `json:"endpoints"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		panic(err)
	}
	out := map[string]*Router{}
	for dir, table := range d.Config.Endpoints {
		var ts []string
		for t := range table {
			ts = append(ts, t)
		}
		sort.Strings(ts)
		r, err := NewRouter(ts)
		if err != nil {
			panic(err)
		}
		out[dir] = r
	}
	return out
}()

// testRoute routes a request as the listener of its API would: federation
// and key paths on the server-server table, the rest on the client table.
func testRoute(method, path string) Route {
	var p Path
	if p.ParsePath(path) != nil {
		return Route{Name: RouteUnknown, API: APIOther}
	}
	r := testRouters["client"].Route(method, &p)
	if r.Name == RouteUnknown {
		r = testRouters["federation"].Route(method, &p)
	}
	return r
}
