package matrix

import "testing"

func TestRouterMatch(t *testing.T) {
	r, err := NewRouter([]string{
		"/_matrix/client/r0|v3/rooms/{roomId}/invite",
		"/_matrix/client/r0|v3/rooms/{roomId}/state/{type}/{key}",
		"/_matrix/client/r0|v3/rooms/{roomId}/{action}/x",
		"/_matrix/client/v3/pushrules/",
		"/_matrix/client/v3/{path}/email/requestToken",
		"/_matrix/media/v3/download/{serverName}/{mediaId}",
		"/static/{rest...}",
		"/_matrix/client/v3/login/sso/redirect/{idp}",
		"/_synapse/client/oidc/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, endpoint, route string }{
		{"POST", "/_matrix/client/v3/rooms/!r:a.de/invite", "/_matrix/client/r0|v3/rooms/{roomId}/invite", RouteInvite},
		{"POST", "/_matrix/client/r0/rooms/!r:a.de/invite", "/_matrix/client/r0|v3/rooms/{roomId}/invite", RouteInvite},
		{"POST", "/_matrix/client/v1/rooms/!r:a.de/invite", "", RouteUnknown},
		{"POST", "/_matrix/client/v3/rooms/!r:a.de/%69nvite", "", RouteUnknown},
		// The literal branch fails deeper; the variable one matches.
		{"GET", "/_matrix/client/v3/rooms/!r:a.de/invite/x", "/_matrix/client/r0|v3/rooms/{roomId}/{action}/x", RouteClientOther},
		{"PUT", "/_matrix/client/v3/rooms/!r:a.de/state/m.room.member/@u:b.de", "/_matrix/client/r0|v3/rooms/{roomId}/state/{type}/{key}", RouteInvite},
		{"GET", "/_matrix/client/v3/rooms/!r:a.de/state/m.room.member/@u:b.de", "/_matrix/client/r0|v3/rooms/{roomId}/state/{type}/{key}", RouteClientOther},
		{"PUT", "/_matrix/client/v3/rooms/!r:a.de/state/m.room.name/", "", RouteUnknown},
		{"GET", "/_matrix/client/v3/pushrules/", "/_matrix/client/v3/pushrules/", RouteClientOther},
		{"GET", "/_matrix/client/v3/pushrules", "", RouteUnknown},
		{"POST", "/_matrix/client/v3/account/email/requestToken", "/_matrix/client/v3/{path}/email/requestToken", RouteClientOther},
		{"GET", "/_matrix/media/v3/download/a.de/m", "/_matrix/media/v3/download/{serverName}/{mediaId}", RouteMedia},
		{"GET", "/static/a/b/c", "/static/{rest...}", RouteOther},
		{"GET", "/static", "", RouteUnknown},
		{"GET", "/_matrix/client/v3/login/sso/redirect/oidc-x", "/_matrix/client/v3/login/sso/redirect/{idp}", RouteSSO},
		{"GET", "/_synapse/client/oidc/callback", "/_synapse/client/oidc/callback", RouteSSO},
		{"GET", "/static/a/", "", RouteUnknown},
	} {
		var p Path
		if err := p.ParsePath(c.path); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		got := r.Route(c.method, &p)
		if got.Endpoint != c.endpoint || got.Name != c.route {
			t.Errorf("%s %s: endpoint %q route %q, want %q %q", c.method, c.path, got.Endpoint, got.Name, c.endpoint, c.route)
		}
	}
}

func TestRouterFacts(t *testing.T) {
	r, err := NewRouter([]string{
		"/_matrix/client/v3/join/{room}",
		"/_matrix/client/v3/rooms/{room}/state/{type}/{key}",
		"/_matrix/client/v1/media/download/{server}/{id}",
		"/_matrix/federation/v1|v2/invite/{room}/{event}",
		"/_matrix/federation/v1/exchange_third_party_invite/{room}",
		"/_matrix/client/v3/createRoom/{txn}",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		want         Route
	}{
		{"POST", "/_matrix/client/v3/join/%23a%3Ab.de", Route{Name: RouteJoin, API: APIClient, Endpoint: "/_matrix/client/v3/join/{room}", Version: "v3", RoomID: "#a:b.de"}},
		{"PUT", "/_matrix/client/v3/rooms/!r/state/m.room%2Emember/%40u%3Ab.de", Route{Name: RouteInvite, API: APIClient, Endpoint: "/_matrix/client/v3/rooms/{room}/state/{type}/{key}", Version: "v3", RoomID: "!r", StateKey: "@u:b.de", Member: true, NeedsBody: true}},
		{"GET", "/_matrix/client/v1/media/download/B.de%3F/x", Route{Name: RouteMedia, API: APIMedia, Endpoint: "/_matrix/client/v1/media/download/{server}/{id}", Version: "v1", MediaServer: "B.de?"}},
		{"PUT", "/_matrix/federation/v2/invite/!r/$e", Route{Name: RouteFederationInvite, API: APIFederation, Endpoint: "/_matrix/federation/v1|v2/invite/{room}/{event}", Version: "v2", RoomID: "!r", NeedsBody: true}},
		{"PUT", "/_matrix/federation/v1/exchange_third_party_invite/!r", Route{Name: RouteFederationThirdParty, API: APIFederation, Endpoint: "/_matrix/federation/v1/exchange_third_party_invite/{room}", Version: "v1"}},
		{"PUT", "/_matrix/client/v3/createRoom/t1", Route{Name: RouteCreateRoom, API: APIClient, Endpoint: "/_matrix/client/v3/createRoom/{txn}", Version: "v3", NeedsBody: true}},
		{"GET", "/_matrix/client/v3/createRoom/t1", Route{Name: RouteCreateRoom, API: APIClient, Endpoint: "/_matrix/client/v3/createRoom/{txn}", Version: "v3"}},
	} {
		var p Path
		if err := p.ParsePath(c.path); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if got := r.Route(c.method, &p); got != c.want {
			t.Errorf("%s %s:\n got %+v\nwant %+v", c.method, c.path, got, c.want)
		}
	}
}

func TestNewRouterRefuses(t *testing.T) {
	for _, ts := range [][]string{
		{"/a/{x}", "/a/{y}"},             // the same paths, two spellings
		{"/a/b|c", "/a/c"},               // likewise, through an alternative
		{"relative/path"},                // not absolute
		{"/a//b"},                        // empty segment
		{"/a/./b"},                       // dot segment
		{"/a/%2Fb"},                      // escape in a literal
		{"/a/{x...}/b"},                  // rest not last
		{"/a/b?c"},                       // query
		{"/a/|b"},                        // empty alternative
		{"/a|b|c|d/a|b|c|d/a|b|c|d/a|b"}, // more than 64 spellings
	} {
		if _, err := NewRouter(ts); err == nil {
			t.Errorf("NewRouter(%q) accepted", ts)
		}
	}
	if _, err := NewRouter([]string{"/a/{x}", "/a/{x}"}); err != nil {
		t.Errorf("the same template twice: %v", err)
	}
}

// TestRouterBudget: a table full of variables cannot make a lookup walk
// every branch.
func TestRouterBudget(t *testing.T) {
	var ts []string
	tpl := ""
	for i := 0; i < 20; i++ {
		tpl += "/{v}"
		ts = append(ts, tpl+"/z")
		lit := ""
		for j := 0; j <= i; j++ {
			lit += "/a"
		}
		ts = append(ts, lit+"/y")
	}
	r, err := NewRouter(ts)
	if err != nil {
		t.Fatal(err)
	}
	var p Path
	if err := p.ParsePath("/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/q"); err != nil {
		t.Fatal(err)
	}
	if e := r.Match(&p); e != nil {
		t.Errorf("matched %s", e.Key)
	}
}
