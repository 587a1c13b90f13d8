// Package homeserver is a stand-in for a Matrix homeserver, kept for the single-organisation tests in
// e2e/e2e_test.go and for the control plane's own tests and benchmark (control/server, bench/control),
// which need a homeserver's OpenID userinfo and account data in-process and per test. `make run` and
// the two-organisation test run a real Dendrite.
//
// It is not a homeserver: it answers the handful of client-server and server-server endpoints the
// Fachdienst's parts touch, keeps its state in memory, and does two things Dendrite cannot:
//   - it records which requests reached it, so that a test proves a refused request never did (a real
//     homeserver would act on it, or refuse it for its own reasons, and the test could not tell the
//     filter's refusal from the homeserver's);
//   - it accepts hand-made server-server requests (X-Matrix with fake signatures, invites for rooms
//     that do not exist), so that a test reaches every branch of the federation listener's filter
//     without a second homeserver to sign them.
//
// Its reading of a request is NOT a homeserver's (Go's encoding/json matches keys case-insensitively,
// its routes are looser): what the filter lets through must be shown against Dendrite (e2e/federation_test.go).
package homeserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxBody bounds what the stand-in reads of a request body.
const maxBody = 1 << 20

// Server is the homeserver stand-in. Create it with New.
type Server struct {
	serverName string
	adminToken string
	mux        *http.ServeMux

	mu           sync.Mutex
	passwords    map[string]string            // MXID -> password
	accessTokens map[string]string            // access token -> MXID
	openIDTokens map[string]string            // OpenID token -> MXID
	accountData  map[string]map[string]any    // MXID -> type -> content
	rooms        map[string]map[string]string // room id -> MXID -> membership
	seen         []string                     // "METHOD path" of every request, in order
}

// New returns a stand-in for the homeserver of serverName. adminToken guards the Synapse-style admin API.
func New(serverName, adminToken string) *Server {
	s := &Server{
		serverName:   serverName,
		adminToken:   adminToken,
		mux:          http.NewServeMux(),
		passwords:    map[string]string{},
		accessTokens: map[string]string{},
		openIDTokens: map[string]string{},
		accountData:  map[string]map[string]any{},
		rooms:        map[string]map[string]string{},
	}
	m := s.mux
	m.HandleFunc("GET /.well-known/matrix/server", s.wellKnownServer)
	m.HandleFunc("GET /.well-known/matrix/client", s.wellKnownClient)
	m.HandleFunc("GET /_matrix/client/versions", s.versions)
	m.HandleFunc("POST /_matrix/client/{v}/login", s.login)
	m.HandleFunc("GET /_matrix/client/{v}/account/whoami", s.authed(s.whoami))
	m.HandleFunc("POST /_matrix/client/{v}/user/{userId}/openid/request_token", s.authed(s.requestOpenID))
	m.HandleFunc("GET /_matrix/client/{v}/user/{userId}/account_data/{type}", s.authed(s.getAccountData))
	m.HandleFunc("PUT /_matrix/client/{v}/user/{userId}/account_data/{type}", s.authed(s.putAccountData))
	m.HandleFunc("POST /_matrix/client/{v}/createRoom", s.authed(s.createRoom))
	m.HandleFunc("POST /_matrix/client/{v}/rooms/{roomId}/invite", s.authed(s.invite))
	m.HandleFunc("GET /_matrix/federation/v1/openid/userinfo", s.userinfo)
	m.HandleFunc("GET /_matrix/federation/v1/version", s.federationVersion)
	m.HandleFunc("PUT /_matrix/federation/{v}/invite/{roomId}/{eventId}", s.federationInvite)
	m.HandleFunc("/_matrix/federation/", s.federationOK)
	m.HandleFunc("GET /_matrix/key/v2/server", s.keyServer)
	m.HandleFunc("GET /_synapse/admin/v1/users/{userId}/accountdata", s.adminAccountData)
	return s
}

// AddUser creates a user with a password; it returns the MXID.
func (s *Server) AddUser(localpart, password string) string {
	mxid := "@" + localpart + ":" + s.serverName
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[mxid] = password
	return mxid
}

// IssueOpenIDToken creates an OpenID token for mxid as `POST .../openid/request_token` would.
func (s *Server) IssueOpenIDToken(mxid string) string {
	tok := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.openIDTokens[tok] = mxid
	return tok
}

// SetAccountData stores global account data of a user (as the client would with PUT account_data).
func (s *Server) SetAccountData(mxid, typ string, content any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accountData[mxid] == nil {
		s.accountData[mxid] = map[string]any{}
	}
	s.accountData[mxid][typ] = content
}

// maxRequestBytes bounds a request body the stand-in reads.
const maxRequestBytes = 64 << 20

// Seen returns "METHOD path" of every request that reached the stand-in whole, in order.
func (s *Server) Seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A request counts once it arrived whole: as under Envoy, a request the messenger proxy refuses after
	// reading its body reaches the homeserver with its headers only and is then reset
	// (docs/decisions/envoy.md E1), and a homeserver acts on none of those.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		return
	}
	if len(body) > maxRequestBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request too large")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.seen = append(s.seen, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) wellKnownServer(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"m.server": s.serverName + ":443"})
}

func (s *Server) wellKnownClient(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"m.homeserver": map[string]string{"base_url": "https://" + s.serverName}})
}

func (s *Server) versions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []string{"v1.1", "v1.2", "v1.3"}})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type       string `json:"type"`
		Identifier struct {
			User string `json:"user"`
		} `json:"identifier"`
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	user := req.Identifier.User
	if user == "" {
		user = req.User
	}
	if !strings.HasPrefix(user, "@") {
		user = "@" + user + ":" + s.serverName
	}
	s.mu.Lock()
	pw, ok := s.passwords[user]
	s.mu.Unlock()
	if req.Type != "m.login.password" || !ok || pw != req.Password {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
		return
	}
	tok := newToken()
	s.mu.Lock()
	s.accessTokens[tok] = user
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"user_id": user, "access_token": tok, "device_id": "STANDIN", "home_server": s.serverName})
}

// authed resolves the access token; handlers read the user from the request context's header.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if tok == "" {
			tok = r.URL.Query().Get("access_token")
		}
		s.mu.Lock()
		user, ok := s.accessTokens[tok]
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown access token")
			return
		}
		h(w, r, user)
	}
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, user string) {
	writeJSON(w, http.StatusOK, map[string]string{"user_id": user})
}

func (s *Server) requestOpenID(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("userId") != user {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Cannot request OpenID tokens for other users")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": s.IssueOpenIDToken(user), "token_type": "Bearer",
		"matrix_server_name": s.serverName, "expires_in": 3600,
	})
}

func (s *Server) getAccountData(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("userId") != user {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Cannot read account data of other users")
		return
	}
	s.mu.Lock()
	content, ok := s.accountData[user][r.PathValue("type")]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Account data not found")
		return
	}
	writeJSON(w, http.StatusOK, content)
}

func (s *Server) putAccountData(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("userId") != user {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Cannot write account data of other users")
		return
	}
	var content map[string]any
	if !readJSON(w, r, &content) {
		return
	}
	s.SetAccountData(user, r.PathValue("type"), content)
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) createRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Invite []string `json:"invite"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	room := "!" + newToken()[:18] + ":" + s.serverName
	s.mu.Lock()
	s.rooms[room] = map[string]string{user: "join"}
	for _, u := range req.Invite {
		s.rooms[room][u] = "invite"
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"room_id": room})
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		UserID string `json:"user_id"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.rooms[r.PathValue("roomId")]
	if !ok || members[user] != "join" {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "You are not in this room")
		return
	}
	members[req.UserID] = "invite"
	writeJSON(w, http.StatusOK, map[string]any{})
}

// userinfo answers GET /_matrix/federation/v1/openid/userinfo, which the VZD and the contact
// management use to learn whose OpenID token they hold.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	user, ok := s.openIDTokens[r.URL.Query().Get("access_token")]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Access Token unknown or expired")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sub": user})
}

func (s *Server) federationVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"server": map[string]string{"name": "tim-standin-homeserver", "version": "0"}})
}

func (s *Server) federationInvite(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if !readJSON(w, r, &body) {
		return
	}
	event := body
	if ev, ok := body["event"].(map[string]any); ok { // v2 wraps the event
		event = ev
	}
	if r.PathValue("v") == "v1" {
		writeJSON(w, http.StatusOK, []any{200, map[string]any{"event": event}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": event})
}

func (s *Server) federationOK(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) keyServer(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"server_name": s.serverName, "verify_keys": map[string]any{}, "old_verify_keys": map[string]any{}, "valid_until_ts": 0})
}

// adminAccountData mirrors Synapse's admin API, which the control plane uses to read a user's
// TI-M Pro permission configuration.
func (s *Server) adminAccountData(w http.ResponseWriter, r *http.Request) {
	if s.adminToken == "" || r.Header.Get("Authorization") != "Bearer "+s.adminToken {
		writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Admin token required")
		return
	}
	s.mu.Lock()
	global := map[string]any{}
	for typ, content := range s.accountData[r.PathValue("userId")] {
		global[typ] = content
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"account_data": map[string]any{"global": global, "rooms": map[string]any{}}})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", fmt.Sprintf("Content not JSON: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, errcode, msg string) {
	writeJSON(w, status, map[string]string{"errcode": errcode, "error": msg})
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
