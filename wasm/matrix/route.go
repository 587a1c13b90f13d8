package matrix

// Route names, as used in the policy input (`input.route`).
const (
	RouteLogin            = "login"
	RouteCreateRoom       = "createRoom"
	RouteInvite           = "invite"
	RouteJoin             = "join"
	RouteFederationInvite = "federation_invite"
	// RouteFederationThirdParty: exchange_third_party_invite and 3pid/onbind,
	// the server-server half of third-party invites.
	RouteFederationThirdParty = "federation_third_party_invite"
	// RouteFederationJoin: make_join, send_join, make_knock, send_knock.
	RouteFederationJoin  = "federation_join"
	RouteMedia           = "media"
	RouteWellKnownServer = "well_known_server"
	RouteWellKnownClient = "well_known_client"
	RouteOpenIDUserinfo  = "openid_userinfo"
	RouteKeyServer       = "key_server"
	RouteVersions        = "versions"
	// RouteSSO: the browser pages of single sign-on (login/sso/redirect,
	// Synapse's /_synapse/client/...), which a client id header cannot
	// reach; the login that follows is RouteLogin.
	RouteSSO             = "sso"
	RouteClientOther     = "client_other"
	RouteFederationOther = "federation_other"
	RouteOther           = "other"
	// RouteUnknown: the path is not in the listener's endpoint table.
	RouteUnknown = "unknown"
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

// Route is what the router learns from the method and path of a request.
type Route struct {
	Name     string // one of the Route* constants
	API      string // one of the API* constants
	Endpoint string // the endpoint template (input.endpoint); empty when unknown
	Version  string // path version segment ("r0", "v3", "unstable", "api/v1", "v1", "v2"); empty when none
	// MediaServer is the {serverName} segment of a media download/thumbnail path.
	MediaServer string
	// RoomID is the room ID or alias of a join, knock or invite path.
	RoomID string
	// StateKey is the {stateKey} (a user ID) of PUT /rooms/{roomId}/state/m.room.member/{stateKey}:
	// a membership event sent through the state endpoint, which homeservers
	// accept as an invite when its membership is "invite". Route "invite",
	// Member true.
	StateKey string
	Member   bool
	// NeedsBody: the facts of this route are in the request body
	// (Invitees, FederationInvite).
	NeedsBody bool
}

// routeKind is what a template's segments say about its route.
type routeKind uint8

const (
	kindOther routeKind = iota
	kindWellKnownServer
	kindWellKnownClient
	kindWellKnownOther
	kindVersions
	kindLogin
	kindCreateRoom
	kindInvite
	kindJoin
	kindStateEvent
	kindClientOther
	kindMedia
	kindMediaOther
	kindFederationInvite
	kindFederationThirdParty
	kindFederationJoin
	kindOpenIDUserinfo
	kindFederationOther
	kindKeyServer
	kindSSO
)

var kindNames = [...]string{
	kindOther:                RouteOther,
	kindWellKnownServer:      RouteWellKnownServer,
	kindWellKnownClient:      RouteWellKnownClient,
	kindWellKnownOther:       RouteOther,
	kindVersions:             RouteVersions,
	kindLogin:                RouteLogin,
	kindCreateRoom:           RouteCreateRoom,
	kindInvite:               RouteInvite,
	kindJoin:                 RouteJoin,
	kindStateEvent:           RouteClientOther,
	kindClientOther:          RouteClientOther,
	kindMedia:                RouteMedia,
	kindMediaOther:           RouteClientOther,
	kindFederationInvite:     RouteFederationInvite,
	kindFederationThirdParty: RouteFederationThirdParty,
	kindFederationJoin:       RouteFederationJoin,
	kindOpenIDUserinfo:       RouteOpenIDUserinfo,
	kindFederationOther:      RouteFederationOther,
	kindKeyServer:            RouteKeyServer,
	kindSSO:                  RouteSSO,
}

// Route returns the route of a request: the endpoint of p in the table and
// the facts of its segments, decoded. A path the table does not hold is
// RouteUnknown. r may be nil (no table): every path is unknown.
func (r *Router) Route(method string, p *Path) (rt Route) {
	var e *Endpoint
	if r != nil {
		e = r.Match(p)
	}
	if e == nil {
		rt.Name, rt.API = RouteUnknown, APIOther
		return rt
	}
	rt.Name, rt.API, rt.Endpoint, rt.Version = kindNames[e.kind], e.api, e.Key, e.version
	if e.room >= 0 {
		rt.RoomID = p.Value(int(e.room))
	}
	body := method == "POST" || method == "PUT"
	switch e.kind {
	case kindMedia:
		rt.MediaServer = p.Value(int(e.server))
	case kindCreateRoom, kindInvite, kindFederationInvite:
		rt.NeedsBody = body
	case kindStateEvent:
		// A membership event: an invite when its body says so. Without a
		// state key it names nobody, which the body check refuses.
		if method == "PUT" && p.Value(int(e.eventType)) == "m.room.member" {
			rt.Name, rt.Member, rt.NeedsBody = RouteInvite, true, true
			if e.stateKey >= 0 {
				rt.StateKey = p.Value(int(e.stateKey))
			}
		}
	}
	return rt
}
