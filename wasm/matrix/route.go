package matrix

import "strings"

// Route names, as used in the policy input (`input.route`).
const (
	RouteLogin            = "login"
	RouteCreateRoom       = "createRoom"
	RouteInvite           = "invite"
	RouteFederationInvite = "federation_invite"
	RouteMedia            = "media"
	RouteWellKnownServer  = "well_known_server"
	RouteWellKnownClient  = "well_known_client"
	RouteOpenIDUserinfo   = "openid_userinfo"
	RouteKeyServer        = "key_server"
	RouteVersions         = "versions"
	RouteClientOther      = "client_other"
	RouteFederationOther  = "federation_other"
	RouteOther            = "other"
)

// API families a route belongs to.
const (
	APIClient     = "client"
	APIFederation = "federation"
	APIMedia      = "media"
	APIWellKnown  = "well-known"
	APIKey        = "key"
	APIOther      = "other"
)

// Route is what Classify learns from the method and path of a request.
type Route struct {
	Name        string // one of the Route* constants
	API         string // one of the API* constants
	Version     string // path version segment ("r0", "v3", "unstable", "api/v1", "v1", "v2"); empty when none
	MediaServer string // the {serverName} segment of a media download/thumbnail path
	// StateKey is the {stateKey} (a user ID) of PUT /rooms/{roomId}/state/m.room.member/{stateKey}:
	// a membership event sent through the state endpoint, which homeservers
	// accept as an invite when its membership is "invite". Route "invite".
	StateKey  string
	NeedsBody bool // the facts of this route are in the request body (Invitees, FederationInvite)
}

// Classify names the Matrix endpoint a request goes to. path is the request
// path, percent-decoded once; a query string is ignored. Empty segments
// ("//", a trailing "/") are skipped so that spelling variants a homeserver
// might accept cannot slip past a check as a different route. Classify does
// not allocate.
//
// Classify runs for every request in the Wasm filter, where Go pays dearly
// for every call, every taken branch and every byte a loop visits, and
// compares strings longer than six bytes with a byte loop (see word.go). So
// the common prefixes and long names are compared a word at a time,
// segments are tested in place (isSeg) instead of being cut out first, and
// only segments whose text matters are measured. The helpers return a kind
// and strings rather than a Route, and the fields are set on the named
// result: in Wasm a Route literal in a return statement, or one handed up
// through a second function, is cleared and copied with bulk-memory calls
// that cost as much as the classification itself.
func Classify(method, path string) (r Route) {
	p := path
	if hasQuery(p) {
		p = p[:strings.IndexByte(p, '?')]
	}
	var k routeKind
	var v, x string
	// The canonical prefixes are compared two words each (spelled out:
	// equalsAt is too large to be inlined); any other spelling is read
	// segment by segment.
	const client, federation = "/_matrix/client/", "/_matrix/federation"
	switch {
	case len(p) >= 16 && load8(p, 0) == load8(client, 0) && load8(p, 8) == load8(client, 8):
		k, v, x = classifyClient(method, p, len(client)-1)
	case len(p) >= 16 && load8(p, 0) == load8(federation, 0) && load8(p, 8) == load8(federation, 8) &&
		isSeg(p, 16, federation[16:]):
		k, v = classifyFederation(method, p, len(federation))
	default:
		k, v, x = classify(method, p)
	}
	switch k {
	case kindWellKnownServer:
		r.Name, r.API = RouteWellKnownServer, APIWellKnown
	case kindWellKnownClient:
		r.Name, r.API = RouteWellKnownClient, APIWellKnown
	case kindWellKnownOther:
		r.Name, r.API = RouteOther, APIWellKnown
	case kindVersions:
		r.Name, r.API = RouteVersions, APIClient
	case kindLogin:
		r.Name, r.API, r.Version = RouteLogin, APIClient, v
	case kindCreateRoom:
		r.Name, r.API, r.Version, r.NeedsBody = RouteCreateRoom, APIClient, v, true
	case kindInvite:
		r.Name, r.API, r.Version, r.StateKey, r.NeedsBody = RouteInvite, APIClient, v, x, true
	case kindClientOther:
		r.Name, r.API, r.Version = RouteClientOther, APIClient, v
	case kindMedia:
		r.Name, r.API, r.Version, r.MediaServer = RouteMedia, APIMedia, v, x
	case kindMediaOther:
		r.Name, r.API, r.Version = RouteClientOther, APIMedia, v
	case kindFederationInvite:
		r.Name, r.API, r.Version, r.NeedsBody = RouteFederationInvite, APIFederation, v, true
	case kindOpenIDUserinfo:
		r.Name, r.API, r.Version = RouteOpenIDUserinfo, APIFederation, v
	case kindFederationOther:
		r.Name, r.API, r.Version = RouteFederationOther, APIFederation, v
	case kindKeyServer:
		r.Name, r.API, r.Version = RouteKeyServer, APIKey, v
	default:
		r.Name, r.API = RouteOther, APIOther
	}
	return r
}

// routeKind is what the classify helpers found; with the version segment
// and the media server or state key it determines the Route.
type routeKind uint8

const (
	kindOther routeKind = iota
	kindWellKnownServer
	kindWellKnownClient
	kindWellKnownOther
	kindVersions
	kindLogin
	kindCreateRoom
	kindInvite // x: the state key of a membership event, if any
	kindClientOther
	kindMedia // x: the media server
	kindMediaOther
	kindFederationInvite
	kindOpenIDUserinfo
	kindFederationOther
	kindKeyServer
)

// classify returns the kind of route, the version segment and the media
// server or state key of a path in any spelling (without query).
func classify(method, p string) (k routeKind, v, x string) {
	a, b := seg(p, 0)
	if p[a:b] != "_matrix" {
		if p[a:b] == ".well-known" {
			return classifyWellKnown(p, b), "", ""
		}
		return kindOther, "", ""
	}
	a, b = seg(p, b)
	switch p[a:b] {
	case "client":
		return classifyClient(method, p, b)
	case "federation":
		k, v = classifyFederation(method, p, b)
		return k, v, ""
	case "media":
		// /_matrix/media/{version}/...
		a, b = seg(p, b)
		v = p[a:b]
		k, x = classifyMediaOp(p, b)
		return k, v, x
	case "key":
		a, b = seg(p, b)
		return kindKeyServer, p[a:b], ""
	}
	return kindOther, "", ""
}

// classifyClient handles the client-server API from index i of p, the end
// of the "client" segment.
func classifyClient(method, p string, i int) (k routeKind, v, x string) {
	a, b := seg(p, i)
	v = p[a:b]
	switch {
	case isVersion(v):
	case v == "versions":
		if end(p[b:]) {
			return kindVersions, "", ""
		}
		return kindClientOther, "", ""
	case v == "api":
		// Synapse still serves the pre-r0 prefix /_matrix/client/api/v1/
		// for login, createRoom and invite.
		a, b = seg(p, b)
		if !isSeg(p, a, "v1") {
			return kindClientOther, "", ""
		}
		v, b = "api/v1", a+len("v1")
	default:
		return kindClientOther, "", ""
	}
	a = skipSlashes(p, b)
	if a == len(p) {
		return kindClientOther, v, ""
	}
	switch p[a] {
	case 'l':
		if isSeg(p, a, "login") {
			return kindLogin, v, ""
		}
	case 'c':
		const createRoom = "createRoom"
		if e := a + len(createRoom); e <= len(p) && load8(p, a) == load8(createRoom, 0) &&
			load8(p, e-8) == load8(createRoom, len(createRoom)-8) && method == "POST" && end(p[e:]) {
			return kindCreateRoom, v, ""
		}
	case 'r':
		if !isSeg(p, a, "rooms") {
			break
		}
		// The room ID arrives percent-decoded and may then span several
		// segments; anything between "rooms/" and a final "invite" counts.
		a = skipSlashes(p, a+len("rooms"))
		if a == len(p) {
			break
		}
		r := p[segEnd(p, a):]
		switch method {
		case "POST":
			e := len(r)
			for e > 0 && r[e-1] == '/' {
				e--
			}
			// The last segment of r is "invite".
			if e > len("invite") && r[e-len("invite"):e] == "invite" && r[e-len("invite")-1] == '/' {
				return kindInvite, v, ""
			}
		case "PUT":
			const member = "/state/m.room.member/"
			for i := 0; i+len(member) <= len(r); i++ {
				if r[i] == '/' && r[i+1] == 's' && equalsAt(r, i, member[:16]) && r[i+16:i+len(member)] == member[16:] {
					return kindInvite, v, strings.Trim(r[i+len(member):], "/")
				}
			}
		}
	case 'o':
		// Unstable prefix of the authenticated media endpoints.
		if b = segEnd(p, a); p[a:b] == "org.matrix.msc3916" {
			a, b = seg(p, b)
			if p[a:b] == "media" {
				k, x = classifyMediaOp(p, b)
				return k, v, x
			}
		}
	case 'm':
		if isSeg(p, a, "media") {
			k, x = classifyMediaOp(p, a+len("media"))
			return k, v, x
		}
	}
	return kindClientOther, v, ""
}

// classifyFederation handles the server-server API from index i of p, the
// end of the "federation" segment.
func classifyFederation(method, p string, i int) (k routeKind, v string) {
	a, b := seg(p, i)
	v = p[a:b]
	a = skipSlashes(p, b)
	switch {
	case isSeg(p, a, "invite") && (v == "v1" || v == "v2"):
		// {roomId}/{eventId}; decoded event IDs of room version 3 may
		// contain "/", so two or more segments count.
		a = skipSlashes(p, a+len("invite"))
		if method == "PUT" && a < len(p) && skipSlashes(p, segEnd(p, a)) < len(p) {
			return kindFederationInvite, v
		}
	case isSeg(p, a, "openid") && v == "v1":
		a = skipSlashes(p, a+len("openid"))
		if isLongSeg(p, a, "userinfo") && end(p[a+len("userinfo"):]) {
			return kindOpenIDUserinfo, v
		}
	}
	return kindFederationOther, v
}

// classifyWellKnown handles /.well-known/ from i, the end of that segment.
func classifyWellKnown(p string, i int) routeKind {
	a, b := seg(p, i)
	if p[a:b] == "matrix" {
		a, b = seg(p, b)
		if end(p[b:]) {
			switch p[a:b] {
			case "server":
				return kindWellKnownServer
			case "client":
				return kindWellKnownClient
			}
		}
	}
	return kindWellKnownOther
}

// classifyMediaOp handles download|thumbnail/{serverName}/{mediaId}[/{fileName}]
// from index i of p and returns the media server.
func classifyMediaOp(p string, i int) (routeKind, string) {
	a := skipSlashes(p, i)
	if a+8 <= len(p) && load8(p, a) == load8("download", 0) && (a+8 == len(p) || p[a+8] == '/') {
		a += len("download")
	} else if isLongSeg(p, a, "thumbnail") {
		a += len("thumbnail")
	} else {
		return kindMediaOther, ""
	}
	a = skipSlashes(p, a)
	if a < len(p) {
		b := segEnd(p, a)
		if skipSlashes(p, b) < len(p) {
			return kindMedia, p[a:b]
		}
	}
	return kindMediaOther, ""
}

// isVersion accepts the client-server prefixes r0, unstable and v<digits>.
func isVersion(v string) bool {
	if v == "r0" || v == "unstable" {
		return true
	}
	if len(v) < 2 || v[0] != 'v' {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// seg returns the bounds [a, b) of the next non-empty segment of p at or
// after index i; a == b == len(p) when none is left. Small enough to be
// inlined, so walking a path costs no calls.
func seg(p string, i int) (a, b int) {
	for i < len(p) && p[i] == '/' {
		i++
	}
	b = i
	for b < len(p) && p[b] != '/' {
		b++
	}
	return i, b
}

// hasQuery reports whether p holds a "?", a word at a time (the last word
// overlapping the one before).
func hasQuery(p string) bool {
	if len(p) < 8 {
		return strings.IndexByte(p, '?') >= 0
	}
	for i := 0; ; i += 8 {
		if i > len(p)-8 {
			i = len(p) - 8
		}
		if hasByte(load8(p, i), '?') {
			return true
		}
		if i == len(p)-8 {
			return false
		}
	}
}

// skipSlashes returns the index of the first byte at or after i that is
// not "/" (len(p) when none).
func skipSlashes(p string, i int) int {
	for i < len(p) && p[i] == '/' {
		i++
	}
	return i
}

// segEnd returns the end of the segment starting at i: the next "/" or
// len(p). Room IDs and server names are long, so it skips a word at a time.
func segEnd(p string, i int) int {
	for i+8 <= len(p) && !hasByte(load8(p, i), '/') {
		i += 8
	}
	for i < len(p) && p[i] != '/' {
		i++
	}
	return i
}

// isSeg reports whether the segment starting at index a of p is lit: p
// holds lit there, followed by "/" or the end. It compares in place, so the
// segment's end need not be found first.
func isSeg(p string, a int, lit string) bool {
	e := a + len(lit)
	return e <= len(p) && (e == len(p) || p[e] == '/') && p[a:e] == lit
}

// isLongSeg is isSeg for literals of 8 to 16 bytes, compared a word at a
// time.
func isLongSeg(p string, a int, lit string) bool {
	e := a + len(lit)
	return (e == len(p) || e < len(p) && p[e] == '/') && equalsAt(p, a, lit)
}

// end reports whether only slashes remain.
func end(rest string) bool {
	for i := 0; i < len(rest); i++ {
		if rest[i] != '/' {
			return false
		}
	}
	return true
}
