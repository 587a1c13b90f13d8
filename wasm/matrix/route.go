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
func Classify(method, path string) Route {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	s0, rest := nextSeg(path)
	switch s0 {
	case ".well-known":
		s1, rest := nextSeg(rest)
		s2, rest := nextSeg(rest)
		if s1 == "matrix" && end(rest) {
			switch s2 {
			case "server":
				return Route{Name: RouteWellKnownServer, API: APIWellKnown}
			case "client":
				return Route{Name: RouteWellKnownClient, API: APIWellKnown}
			}
		}
		return Route{Name: RouteOther, API: APIWellKnown}
	case "_matrix":
		s1, rest := nextSeg(rest)
		switch s1 {
		case "client":
			return classifyClient(method, rest)
		case "media":
			return classifyLegacyMedia(rest)
		case "federation":
			return classifyFederation(method, rest)
		case "key":
			v, _ := nextSeg(rest)
			return Route{Name: RouteKeyServer, API: APIKey, Version: v}
		}
	}
	return Route{Name: RouteOther, API: APIOther}
}

func classifyClient(method, rest string) Route {
	v, rest := nextSeg(rest)
	if v == "versions" && end(rest) {
		return Route{Name: RouteVersions, API: APIClient}
	}
	if v == "api" {
		// Synapse still serves the pre-r0 prefix /_matrix/client/api/v1/
		// for login, createRoom and invite.
		v1, r := nextSeg(rest)
		if v1 != "v1" {
			return Route{Name: RouteClientOther, API: APIClient}
		}
		v, rest = "api/v1", r
	} else if !isVersion(v) {
		return Route{Name: RouteClientOther, API: APIClient}
	}
	s, rest := nextSeg(rest)
	switch s {
	case "login":
		return Route{Name: RouteLogin, API: APIClient, Version: v}
	case "createRoom":
		if method == "POST" && end(rest) {
			return Route{Name: RouteCreateRoom, API: APIClient, Version: v, NeedsBody: true}
		}
	case "rooms":
		// The room ID arrives percent-decoded and may then span several
		// segments; anything between "rooms/" and a final "invite" counts.
		room, r := nextSeg(rest)
		if room == "" {
			break
		}
		if method == "POST" && lastSeg(r) == "invite" {
			return Route{Name: RouteInvite, API: APIClient, Version: v, NeedsBody: true}
		}
		if method == "PUT" {
			if i := strings.Index(r, "/state/m.room.member/"); i >= 0 {
				key := strings.Trim(r[i+len("/state/m.room.member/"):], "/")
				return Route{Name: RouteInvite, API: APIClient, Version: v, StateKey: key, NeedsBody: true}
			}
		}
	case "org.matrix.msc3916":
		// Unstable prefix of the authenticated media endpoints.
		m, r := nextSeg(rest)
		if m == "media" {
			return classifyMediaOp(v, r)
		}
	case "media":
		return classifyMediaOp(v, rest)
	}
	return Route{Name: RouteClientOther, API: APIClient, Version: v}
}

// classifyLegacyMedia handles /_matrix/media/{version}/...
func classifyLegacyMedia(rest string) Route {
	v, rest := nextSeg(rest)
	return classifyMediaOp(v, rest)
}

// classifyMediaOp handles download|thumbnail/{serverName}/{mediaId}[/{fileName}].
func classifyMediaOp(v, rest string) Route {
	op, rest := nextSeg(rest)
	if op == "download" || op == "thumbnail" {
		server, r := nextSeg(rest)
		media, _ := nextSeg(r)
		if server != "" && media != "" {
			return Route{Name: RouteMedia, API: APIMedia, Version: v, MediaServer: server}
		}
	}
	return Route{Name: RouteClientOther, API: APIMedia, Version: v}
}

func classifyFederation(method, rest string) Route {
	v, rest := nextSeg(rest)
	s, rest := nextSeg(rest)
	switch {
	case s == "invite" && (v == "v1" || v == "v2"):
		// {roomId}/{eventId}; decoded event IDs of room version 3 may
		// contain "/", so two or more segments count.
		room, r := nextSeg(rest)
		event, _ := nextSeg(r)
		if method == "PUT" && room != "" && event != "" {
			return Route{Name: RouteFederationInvite, API: APIFederation, Version: v, NeedsBody: true}
		}
	case s == "openid" && v == "v1":
		u, r := nextSeg(rest)
		if u == "userinfo" && end(r) {
			return Route{Name: RouteOpenIDUserinfo, API: APIFederation, Version: v}
		}
	}
	return Route{Name: RouteFederationOther, API: APIFederation, Version: v}
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

// nextSeg returns the next non-empty path segment and the remainder.
func nextSeg(p string) (seg, rest string) {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// lastSeg returns the last non-empty segment of p.
func lastSeg(p string) string {
	p = strings.TrimRight(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
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
