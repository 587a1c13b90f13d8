// Package matrix extracts the Matrix facts the messenger proxy decides on:
// the route of a request, the X-Matrix Authorization of server-server
// requests, server names, user IDs, the TI-Messenger client id and the
// invitees named in invite and createRoom bodies.
//
// The package only reads and validates; it never decides. It runs once per
// request inside the Wasm filter, so the hot paths (Classify, ParseServerName,
// ParseUserID, ClientID) do not allocate, and body decoding reads only the
// fields it needs. Callers cap body sizes before calling in.
//
// API:
//
//	Classify(method, path string) Route // Route.StateKey: membership sent via the state endpoint
//	ParseXMatrix(authorizationValues []string) (XMatrix, error)
//	XMatrixOrigin(authorizationValues []string) (origin, destination string, err error)
//	ParseServerName(s string) (host string, port int, err error)
//	ParseUserID(s string) (localpart, server string, err error)
//	ClientID(userAgent, timUserAgent, tiUserAgent string) (id string, ok bool)
//	Invitees(route Route, body []byte) ([]string, error) // IDs may be views of body
//	FederationInvite(route Route, body []byte) (inviter, invitee string, err error)
//
// Errors: ErrNotJSON (body is not a JSON object: answer 400 M_NOT_JSON),
// ErrBadParam (a field has the wrong type or is not a valid user ID: answer
// 400 M_INVALID_PARAM), ErrNoXMatrix / ErrBadXMatrix (answer 401),
// ErrBadServerName, ErrBadUserID.
package matrix
