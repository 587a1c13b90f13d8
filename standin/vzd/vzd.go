// Package vzd is a STAND-IN for the gematik VZD-FHIR-Directory, for local runs and tests only. It is not
// the VZD and must never be used in production.
//
// It serves, on one http.Handler, what the registration service calls:
//
//	POST   /auth/realms/TI-Provider/protocol/openid-connect/token   OAuth2 client credentials (also under
//	                                                                 /realms/…, the authenticate service's tokenUrl)
//	GET    /ti-provider-authenticate                                 provider access token
//	GET    /tim-provider-services/                                   getInfo
//	GET    /tim-provider-services/FederationList/federationList.jws  ?version= (204 when current), ?sigAlg=
//	GET    /tim-provider-services/localization                       ?mxid=matrix:u/local:domain (whereIs)
//	POST   /tim-provider-services/federation                         add a domain (400 invalid/inactive, 409 exists)
//	GET    /tim-provider-services/federation                         this provider's domains, or ?domain= one
//	PUT    /tim-provider-services/federation/{domain}                change a domain (403 another provider's, 404 unknown)
//	DELETE /tim-provider-services/federation/{domain}                remove a domain (403 another provider's, 404 unknown)
//	GET    /tim-provider-services/federationCheck                    200 inactive domains / 204
//
// It answers as I_VZD_TIM_Provider_Services 1.4.0 and I_VZD_TI_Provider_Authenticate_Service specify,
// errors included (JSON Error bodies, also for unknown paths and methods). A domain belongs to the provider
// named in its timAnbieter; domains given to WithDomains without one belong to this stand-in's client,
// domains given to AddDomain without one to an unknown provider.
//
// State is in memory: a domain added with POST /federation appears in the next list version. Lists are
// signed with ES256 or BP256R1 by a signer chained to a test CA (see TrustAnchorPEM). WithQuirks makes
// the served list look like gematik's real one (timAnbieter null, iks instead of ik).
//
// Faults can be injected with WithFaults or at run time through the admin endpoints (which are
// unauthenticated; the stand-in is meant for loopback use):
//
//	POST /admin/faults        {"delay_ms":0,"fail_status":503,"fail_count":2,"garble_jws":false}
//	POST /admin/localization  {"mxid":"@a:b.de","location":"org"}
//	POST /admin/revoke-tokens {}
//	GET  /admin/state         counters and current list version
package vzd

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paths served by the stand-in; they match the VZD's and the defaults of control/vzd.
const (
	TokenPath        = "/auth/realms/TI-Provider/protocol/openid-connect/token"
	RealmTokenPath   = "/realms/TI-Provider/protocol/openid-connect/token" // tokenUrl of the authenticate service's file
	AuthenticatePath = "/ti-provider-authenticate"
	ServicesPath     = "/tim-provider-services"
)

// Domain is a domain of the federation (schema Domain of I_VZD_TIM_Provider_Services 1.4.0).
type Domain struct {
	Domain          string   `json:"domain"`
	TelematikID     string   `json:"telematikID"`
	TimAnbieter     string   `json:"timAnbieter,omitempty"`
	IK              []string `json:"ik,omitempty"`
	IsInsurance     bool     `json:"isInsurance"`
	RedirectDomains []string `json:"redirectDomains,omitempty"`
}

// Quirks make the served federation list look like gematik's real one instead of like its schema.
type Quirks struct {
	// NullTimAnbieter serves "timAnbieter": null for domains of an unknown provider (added with
	// AddDomain without one), as 19 entries of the real list do; without it the member is left out.
	NullTimAnbieter bool
	// IKs serves the IK numbers as "iks" (always present, possibly empty) instead of "ik".
	IKs bool
}

// Faults make the stand-in misbehave. FailCount answers (negative: all) get FailStatus instead of their
// normal answer; Delay is added before every answer; GarbleJWS corrupts the signature of served lists.
// Admin endpoints are never affected.
type Faults struct {
	Delay      time.Duration
	FailStatus int
	FailCount  int
	GarbleJWS  bool
}

// Stats counts what the stand-in served, for tests.
type Stats struct {
	OAuthTokens    int   `json:"oauth_tokens"`
	ProviderTokens int   `json:"provider_tokens"`
	ListRequests   int   `json:"list_requests"`
	ListsServed    int   `json:"lists_served"` // 200 answers of federationList.jws
	FaultsServed   int   `json:"faults_served"`
	Version        int64 `json:"version"`
}

// Option configures a Server.
type Option func(*Server)

// WithClient sets the OAuth2 client credentials the token endpoint accepts (default "tim-fd"/"secret").
func WithClient(id, secret string) Option {
	return func(s *Server) { s.clientID, s.secret = id, secret }
}

// WithDomains sets the initial federation list.
func WithDomains(ds ...Domain) Option {
	return func(s *Server) {
		for _, d := range ds {
			s.domains[d.Domain] = d
		}
	}
}

// WithVersion sets the initial list version (default 1).
func WithVersion(v int64) Option { return func(s *Server) { s.version = v } }

// WithTokenLifetimes sets the lifetimes of OAuth2 and provider tokens (defaults 300 s and 3600 s).
func WithTokenLifetimes(oauth, provider time.Duration) Option {
	return func(s *Server) { s.oauthTTL, s.providerTTL = oauth, provider }
}

// WithFaults injects faults from the start.
func WithFaults(f Faults) Option { return func(s *Server) { s.faults = f } }

// WithLocation answers whereIs for mxid ("@local:domain") with loc (org, pract, orgPract, none).
func WithLocation(mxid, loc string) Option { return func(s *Server) { s.locations[mxid] = loc } }

// WithQuirks serves the federation list with the real list's deviations from its schema.
func WithQuirks(q Quirks) Option { return func(s *Server) { s.quirks = q } }

// WithProvider sets this stand-in's client's timAnbieter (default: the client id).
func WithProvider(timAnbieter string) Option { return func(s *Server) { s.provider = timAnbieter } }

// WithSigner replaces the generated test PKI (for tests that need a particular CA).
func WithSigner(sg Signer) Option { return func(s *Server) { s.signer = sg } }

// WithClock sets the time source for token expiry (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Signer signs federation list payloads as compact JWS with an x5c header.
type Signer interface {
	// Sign returns the compact JWS of payload; alg is "ES256" or "BP256R1".
	Sign(payload []byte, alg string) ([]byte, error)
	// TrustAnchorPEM is the CA certificate that verifiers must trust.
	TrustAnchorPEM() []byte
}

// Server is the stand-in. Create it with New; it is an http.Handler.
type Server struct {
	mux    *http.ServeMux
	signer Signer
	now    func() time.Time

	clientID, secret      string
	provider              string // timAnbieter of the client's domains
	quirks                Quirks
	oauthTTL, providerTTL time.Duration

	mu        sync.Mutex
	domains   map[string]Domain
	inactive  map[string]bool
	locations map[string]string
	version   int64
	faults    Faults
	oauth     map[string]time.Time // token -> expiry
	provTok   map[string]time.Time
	stats     Stats
	cache     map[string][]byte // alg -> signed list of the current version
}

// New builds a stand-in with a fresh test PKI unless WithSigner is given.
func New(opts ...Option) (*Server, error) {
	s := &Server{
		now:         time.Now,
		clientID:    "tim-fd",
		secret:      "secret",
		oauthTTL:    300 * time.Second,
		providerTTL: time.Hour,
		domains:     map[string]Domain{},
		inactive:    map[string]bool{},
		locations:   map[string]string{},
		version:     1,
		oauth:       map[string]time.Time{},
		provTok:     map[string]time.Time{},
		cache:       map[string][]byte{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.provider == "" {
		s.provider = s.clientID
	}
	for name, d := range s.domains {
		if d.TimAnbieter == "" {
			d.TimAnbieter = s.provider
			s.domains[name] = d
		}
	}
	if s.signer == nil {
		sg, err := NewTestSigner()
		if err != nil {
			return nil, fmt.Errorf("standin vzd: test PKI: %w", err)
		}
		s.signer = sg
	}
	m := http.NewServeMux()
	m.HandleFunc("POST "+TokenPath, s.faulty(s.token))
	m.HandleFunc("POST "+RealmTokenPath, s.faulty(s.token))
	m.HandleFunc("GET "+AuthenticatePath, s.faulty(s.authenticate))
	m.HandleFunc("GET "+ServicesPath+"/{$}", s.faulty(s.provided(s.info)))
	m.HandleFunc("GET "+ServicesPath+"/federation", s.faulty(s.provided(s.getDomains)))
	m.HandleFunc("PUT "+ServicesPath+"/federation/{domain}", s.faulty(s.provided(s.updateDomain)))
	m.HandleFunc("GET "+ServicesPath+"/FederationList/federationList.jws", s.faulty(s.provided(s.federationList)))
	m.HandleFunc("GET "+ServicesPath+"/localization", s.faulty(s.provided(s.localization)))
	m.HandleFunc("POST "+ServicesPath+"/federation", s.faulty(s.provided(s.addDomain)))
	m.HandleFunc("DELETE "+ServicesPath+"/federation/{domain}", s.faulty(s.provided(s.deleteDomain)))
	m.HandleFunc("GET "+ServicesPath+"/federationCheck", s.faulty(s.provided(s.federationCheck)))
	m.HandleFunc("POST /admin/faults", s.adminFaults)
	m.HandleFunc("POST /admin/localization", s.adminLocalization)
	m.HandleFunc("POST /admin/revoke-tokens", s.adminRevoke)
	m.HandleFunc("GET /admin/state", s.adminState)
	s.mux = m
	return s, nil
}

// ServeHTTP serves the interfaces. Requests no route matches get the interface's JSON Error body, not
// the mux's text/plain: 404, or 405 with Allow when the path exists for other methods.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets the path values, which Handler does not
		return
	}
	probe := httptest.NewRecorder()
	h.ServeHTTP(probe, r)
	for k, v := range probe.Header() {
		if k == "Allow" || k == "Location" {
			w.Header()[k] = v
		}
	}
	switch probe.Code {
	case http.StatusMethodNotAllowed:
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	case http.StatusNotFound:
		writeError(w, http.StatusNotFound, "no such resource")
	default: // a redirect to the cleaned path
		w.WriteHeader(probe.Code)
	}
}

// Domains returns the federation's domains, sorted, for tests.
func (s *Server) Domains() []Domain {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedLocked(func(Domain) bool { return true })
}

func (s *Server) sortedLocked(keep func(Domain) bool) []Domain {
	names := make([]string, 0, len(s.domains))
	for n, d := range s.domains {
		if keep(d) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]Domain, 0, len(names))
	for _, n := range names {
		out = append(out, s.domains[n])
	}
	return out
}

// TrustAnchorPEM is the CA certificate the served lists chain to.
func (s *Server) TrustAnchorPEM() []byte { return s.signer.TrustAnchorPEM() }

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// SetLocation sets the whereIs answer for an MXID.
func (s *Server) SetLocation(mxid, loc string) {
	s.mu.Lock()
	s.locations[mxid] = loc
	s.mu.Unlock()
}

// SetInactive marks a domain's organisation inactive (reported by federationCheck).
func (s *Server) SetInactive(domain string, inactive bool) {
	s.mu.Lock()
	s.inactive[domain] = inactive
	s.mu.Unlock()
}

// AddDomain adds (or replaces) a domain directly, as another provider's registration would; the list
// version goes up.
func (s *Server) AddDomain(d Domain) {
	s.mu.Lock()
	s.domains[strings.ToLower(d.Domain)] = d
	s.version++
	s.mu.Unlock()
}

// RevokeTokens invalidates every issued token, as a VZD restart would.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	clear(s.oauth)
	clear(s.provTok)
	s.mu.Unlock()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Version = s.version
	return st
}

// SignedList returns the current list as served (for tests that need a JWS without HTTP).
func (s *Server) SignedList(alg string) ([]byte, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.signedLocked(alg)
	return b, s.version, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

// faulty applies the injected delay and failures before h.
func (s *Server) faulty(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.faults
		fail := f.FailStatus != 0 && f.FailCount != 0
		if fail {
			if s.faults.FailCount > 0 {
				s.faults.FailCount--
			}
			s.stats.FaultsServed++
		}
		s.mu.Unlock()
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fail {
			writeError(w, f.FailStatus, "injected fault")
			return
		}
		h(w, r)
	}
}

// provided requires a valid provider access token.
func (s *Server) provided(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		exp, known := s.provTok[tok]
		valid := ok && known && s.now().Before(exp)
		s.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", "OAuth")
			writeError(w, http.StatusUnauthorized, "invalid or expired provider access token")
			return
		}
		h(w, r)
	}
}

func newToken(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) != 1 || subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	tok := newToken("oauth-")
	s.mu.Lock()
	s.oauth[tok] = s.now().Add(s.oauthTTL)
	s.stats.OAuthTokens++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.oauthTTL / time.Second)})
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.oauth[tok]
	if !ok || !known || !s.now().Before(exp) {
		s.mu.Unlock()
		w.Header().Set("WWW-Authenticate", "OAuth")
		writeError(w, http.StatusUnauthorized, "invalid or expired OAuth2 token")
		return
	}
	pt := newToken("prov-")
	s.provTok[pt] = s.now().Add(s.providerTTL)
	s.stats.ProviderTokens++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": pt, "client_id": s.clientID, "token_type": "Bearer", "expires_in": int(s.providerTTL / time.Second)})
}

func (s *Server) federationList(w http.ResponseWriter, r *http.Request) {
	alg := r.URL.Query().Get("sigAlg")
	if alg == "" {
		alg = "BP256R1"
	}
	if alg != "BP256R1" && alg != "ES256" {
		writeError(w, http.StatusBadRequest, "sigAlg must be BP256R1 or ES256")
		return
	}
	var known int64
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "version must be a non-negative integer")
			return
		}
		known = n
	}
	s.mu.Lock()
	s.stats.ListRequests++
	if known >= s.version {
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	jws, err := s.signedLocked(alg)
	garble := s.faults.GarbleJWS
	if err == nil {
		s.stats.ListsServed++
	}
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "signing failed")
		return
	}
	if garble {
		jws = garbled(jws)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(jws)
}

// garbled flips a character of the signature part, so the JWS parses but does not verify.
func garbled(jws []byte) []byte {
	out := append([]byte(nil), jws...)
	i := len(out) - 5
	if i > 0 {
		if out[i] == 'A' {
			out[i] = 'B'
		} else {
			out[i] = 'A'
		}
	}
	return out
}

// signedLocked returns the list of the current version signed with alg, signing once per version.
func (s *Server) signedLocked(alg string) ([]byte, error) {
	key := alg + "/" + strconv.FormatInt(s.version, 10)
	if b, ok := s.cache[key]; ok {
		return b, nil
	}
	domains := s.sortedLocked(func(Domain) bool { return true })
	list := make([]map[string]any, 0, len(domains))
	for _, d := range domains {
		list = append(list, s.listEntry(d))
	}
	payload, err := json.Marshal(map[string]any{"version": s.version, "domainList": list})
	if err != nil {
		return nil, err
	}
	b, err := s.signer.Sign(payload, alg)
	if err != nil {
		return nil, err
	}
	clear(s.cache)
	s.cache[key] = b
	return b, nil
}

// listEntry is a domain as the federation list shows it (schema FederationList: no redirectDomains).
func (s *Server) listEntry(d Domain) map[string]any {
	e := map[string]any{"domain": d.Domain, "telematikID": d.TelematikID, "isInsurance": d.IsInsurance}
	switch {
	case d.TimAnbieter != "":
		e["timAnbieter"] = d.TimAnbieter
	case s.quirks.NullTimAnbieter:
		e["timAnbieter"] = nil
	}
	switch {
	case s.quirks.IKs:
		e["iks"] = append([]string{}, d.IK...)
	case len(d.IK) > 0:
		e["ik"] = d.IK
	}
	return e
}

func (s *Server) localization(w http.ResponseWriter, r *http.Request) {
	uri := r.URL.Query().Get("mxid")
	rest, ok := strings.CutPrefix(uri, "matrix:u/")
	if !ok || !strings.Contains(rest, ":") {
		writeError(w, http.StatusBadRequest, "mxid must have the form matrix:u/localpart:domain")
		return
	}
	s.mu.Lock()
	loc, found := s.locations["@"+rest]
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "MXID not found")
		return
	}
	writeJSON(w, http.StatusOK, loc)
}

// readDomain decodes and checks a Domain request body: the schema's required members, the read-only
// timAnbieter refused, ik as the list schema demands (at least one unique IK for an insurance domain,
// none otherwise).
func readDomain(w http.ResponseWriter, r *http.Request) (Domain, string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return Domain{}, "Content-Type must be application/json"
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return Domain{}, "request body too large or unreadable"
	}
	var members map[string]json.RawMessage
	var d Domain
	if json.Unmarshal(raw, &members) != nil || json.Unmarshal(raw, &d) != nil {
		return Domain{}, "invalid Domain JSON"
	}
	for _, k := range []string{"domain", "telematikID", "isInsurance"} {
		if _, ok := members[k]; !ok {
			return Domain{}, k + " is required"
		}
	}
	if _, ok := members["timAnbieter"]; ok {
		return Domain{}, "timAnbieter is read-only"
	}
	d.Domain = strings.ToLower(strings.TrimSpace(d.Domain))
	if d.Domain == "" || d.TelematikID == "" || strings.ContainsAny(d.Domain, "/ ") {
		return Domain{}, "domain and telematikID must be non-empty; domain without '/' or spaces"
	}
	if _, ok := members["ik"]; ok && len(d.IK) == 0 {
		return Domain{}, "ik must hold at least one IK"
	}
	seen := map[string]bool{}
	for _, ik := range d.IK {
		if ik == "" || seen[ik] {
			return Domain{}, "ik must hold unique, non-empty IKs"
		}
		seen[ik] = true
	}
	if d.IsInsurance != (len(d.IK) > 0) {
		return Domain{}, "ik is required for an insurance domain and not allowed otherwise"
	}
	for _, rd := range d.RedirectDomains {
		if strings.TrimSpace(rd) == "" {
			return Domain{}, "redirectDomains must not hold empty names"
		}
	}
	return d, ""
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request) {
	d, msg := readDomain(w, r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	// The VZD refuses domains of organisations that are not active; the stand-in models that by prefix.
	if strings.HasPrefix(d.TelematikID, "inactive-") {
		writeError(w, http.StatusBadRequest, "organization which belongs to the telematikID is not active")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.domains[d.Domain]; exists {
		writeError(w, http.StatusConflict, "domain already exists")
		return
	}
	d.TimAnbieter = s.provider
	s.domains[d.Domain] = d
	s.version++
	writeJSON(w, http.StatusOK, d)
}

// ownLocked finds a domain of the path and checks that it is this provider's; it answers otherwise.
func (s *Server) ownLocked(w http.ResponseWriter, name string) (Domain, bool) {
	d, ok := s.domains[name]
	if !ok {
		writeError(w, http.StatusNotFound, "domain not found")
		return Domain{}, false
	}
	if d.TimAnbieter != s.provider {
		writeError(w, http.StatusForbidden, "domain is assigned to another TI-Messenger provider")
		return Domain{}, false
	}
	return d, true
}

func (s *Server) updateDomain(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.PathValue("domain"))
	d, msg := readDomain(w, r)
	if msg == "" && d.Domain != name {
		msg = "domain in the body must equal the domain of the path"
	}
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ownLocked(w, name); !ok {
		return
	}
	d.TimAnbieter = s.provider
	s.domains[name] = d
	s.version++
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.PathValue("domain"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ownLocked(w, name); !ok {
		return
	}
	delete(s.domains, name)
	s.version++
	w.WriteHeader(http.StatusNoContent)
}

// getDomains answers getTiMessengerDomain: every domain of this provider, or the one named by ?domain=.
func (s *Server) getDomains(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.Has("domain") {
		name := strings.ToLower(strings.TrimSpace(q.Get("domain")))
		if name == "" {
			writeError(w, http.StatusBadRequest, "domain must not be empty")
			return
		}
		d, ok := s.ownLocked(w, name)
		if ok {
			writeJSON(w, http.StatusOK, []Domain{d})
		}
		return
	}
	writeJSON(w, http.StatusOK, s.sortedLocked(func(d Domain) bool { return d.TimAnbieter == s.provider }))
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"title":       "I_VZD_TIM_Provider_Services",
		"description": "STAND-IN of the VZD-FHIR-Directory for local runs and tests",
		"version":     "1.4.0",
	})
}

func (s *Server) federationCheck(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := s.sortedLocked(func(d Domain) bool {
		return s.inactive[strings.ToLower(d.Domain)] && d.TimAnbieter == s.provider
	})
	s.mu.Unlock()
	if len(out) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"inactiveOrganizationDomains": out})
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DelayMS    int  `json:"delay_ms"`
		FailStatus int  `json:"fail_status"`
		FailCount  int  `json:"fail_count"`
		GarbleJWS  bool `json:"garble_jws"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON")
		return
	}
	if in.FailStatus != 0 && (in.FailStatus < 400 || in.FailStatus > 599) {
		writeError(w, http.StatusBadRequest, "fail_status must be 4xx or 5xx")
		return
	}
	s.SetFaults(Faults{Delay: time.Duration(in.DelayMS) * time.Millisecond, FailStatus: in.FailStatus, FailCount: in.FailCount, GarbleJWS: in.GarbleJWS})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminLocalization(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MXID     string `json:"mxid"`
		Location string `json:"location"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil || !strings.HasPrefix(in.MXID, "@") {
		writeError(w, http.StatusBadRequest, "want {\"mxid\":\"@a:b\",\"location\":\"org|pract|orgPract|none\"}")
		return
	}
	switch in.Location {
	case "org", "pract", "orgPract", "none":
	default:
		writeError(w, http.StatusBadRequest, "location must be org, pract, orgPract or none")
		return
	}
	s.SetLocation(in.MXID, in.Location)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request) {
	s.RevokeTokens()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}
