// Package idp is a stand-in for gematik's central IDP service in local runs and tests: an OpenID
// provider (zitadel/oidc's op) with the authorisation code flow and PKCE that signs in every
// request at once as the configured SMC-B identity and issues ID_TOKENs carrying its claims
// (professionOID, idNummer, organizationName, acr). Keys and claims are configurable, and faults
// (forged signature, expired token, wrong audience, replayed nonce) can be switched on to test a
// relying party's validation.
//
// Like the real IDP it can sign with BP256R1 (ECDSA on brainpoolP256r1) and publish the key as a
// JWK of crv BP-256. go-jose, which the provider signs with, has no brainpool, so then the provider
// signs with an unpublished P-256 key and every ID_TOKEN it issues is signed again here, with jwx.
package idp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/timfd/fachdienst/internal/brainpooljws"
)

// Signature algorithms of the ID_TOKENs.
const (
	AlgBP256R1 = brainpooljws.Alg // what gematik's IDP signs with
	AlgES256   = "ES256"
	AlgRS256   = "RS256"
)

// Identity is the SMC-B the stand-in signs in as.
type Identity struct {
	Subject          string
	ProfessionOID    string
	IDNummer         string
	OrganizationName string
	Extra            map[string]any // further claims
}

// Client is a registered relying party.
type Client struct {
	ID           string
	Secret       string
	RedirectURIs []string
}

// Faults make the issued ID_TOKENs invalid in one respect each.
type Faults struct {
	ForgeSignature bool     // signed with a key not in the JWKS (same key ID)
	Expired        bool     // exp in the past
	Audience       []string // aud other than the client
	Nonce          string   // this nonce instead of the request's (a replayed one)
	ACR            string   // this acr instead of the configured one
}

// Config configures the stand-in.
type Config struct {
	Issuer   string // the URL it is reached at, e.g. http://127.0.0.1:PORT
	Clients  []Client
	Identity Identity
	ACR      string        // default gematik-ehealth-loa-high
	Lifetime time.Duration // of ID_TOKENs, default 5 min
	// SigningKey: *ecdsa.PrivateKey on brainpoolP256r1 (BP256R1) or P-256 (ES256), or
	// *rsa.PrivateKey (RS256). When nil, a fresh key for Alg.
	SigningKey crypto.Signer
	Alg        string // AlgBP256R1, AlgES256 (the default) or AlgRS256; only read when SigningKey is nil
}

// Server is the stand-in IDP; it is an http.Handler.
type Server struct {
	cfg      Config
	provider *op.Provider
	st       *storage
	mux      *http.ServeMux
	alg      string        // of the ID_TOKENs as issued
	forged   crypto.Signer // of the same kind as cfg.SigningKey, not published
	resigns  bool          // every ID_TOKEN is signed again here (BP256R1)
}

// New builds the provider.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || len(cfg.Clients) == 0 {
		return nil, errors.New("idp: issuer and at least one client are required")
	}
	if cfg.ACR == "" {
		cfg.ACR = "gematik-ehealth-loa-high"
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 5 * time.Minute
	}
	if cfg.SigningKey == nil {
		k, err := generateKey(cfg.Alg)
		if err != nil {
			return nil, err
		}
		cfg.SigningKey = k
	}
	alg, err := algOf(cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	forged, err := sameKind(cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	// The provider's own key and algorithm: the configured ones, or for BP256R1 an unpublished
	// P-256 key whose signatures are replaced before a token leaves.
	opAlg, opKey, opForged := jose.SignatureAlgorithm(alg), cfg.SigningKey, forged
	if alg == AlgBP256R1 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		opAlg, opKey, opForged = jose.ES256, k, k
	}
	st := &storage{
		cfg: &cfg, alg: opAlg, key: opKey, forged: opForged, kid: uuid.NewString(),
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]tokenInfo{},
		identity: cfg.Identity,
	}
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	p, err := op.NewOpenIDProvider(strings.TrimRight(cfg.Issuer, "/"), &op.Config{
		CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true,
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "nonce", "acr", "amr", "professionOID", "idNummer", "organizationName"},
	}, st, op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	s := &Server{cfg: cfg, provider: p, st: st, mux: http.NewServeMux(), alg: alg, forged: forged, resigns: alg == AlgBP256R1}
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.Handle("/", p)
	return s, nil
}

func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgBP256R1:
		return brainpooljws.GenerateKey()
	case "", AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("idp: alg %q: want %s, %s or %s", alg, AlgBP256R1, AlgES256, AlgRS256)
}

func algOf(k crypto.Signer) (string, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		switch {
		case k.Curve == elliptic.P256():
			return AlgES256, nil
		case brainpooljws.IsBrainpool(k.Curve):
			return AlgBP256R1, nil
		}
		return "", errors.New("idp: only P-256 and brainpoolP256r1 ECDSA keys")
	case *rsa.PrivateKey:
		return AlgRS256, nil
	}
	return "", errors.New("idp: signing key must be ECDSA (P-256, brainpoolP256r1) or RSA")
}

func sameKind(k crypto.Signer) (crypto.Signer, error) {
	alg, err := algOf(k)
	if err != nil {
		return nil, err
	}
	return generateKey(alg)
}

// ServeHTTP serves discovery, authorize, token, keys, userinfo and the automatic login.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.st.mu.Lock()
	f := s.st.faults
	s.st.mu.Unlock()
	switch {
	case s.resigns && r.URL.Path == "/keys":
		s.serveJWKS(w)
	case s.resigns && r.URL.Path == oidc.DiscoveryEndpoint:
		s.rewrite(w, r, func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{s.alg} })
	case r.URL.Path == "/oauth/token" && (s.resigns || len(f.Audience) > 0):
		// The provider always adds the client to aud; a token for another audience is signed
		// again here with the published key, so only its audience is wrong.
		s.rewrite(w, r, func(resp map[string]any) {
			if tok, ok := resp["id_token"].(string); ok {
				if re, err := s.resign(tok, f); err == nil {
					resp["id_token"] = re
				} else {
					delete(resp, "id_token")
				}
			}
		})
	default:
		s.mux.ServeHTTP(w, r)
	}
}

// rewrite serves r and changes the JSON object of a successful answer.
func (s *Server) rewrite(w http.ResponseWriter, r *http.Request, change func(map[string]any)) {
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	var obj map[string]any
	if rec.Code == http.StatusOK && json.Unmarshal(body, &obj) == nil {
		change(obj)
		body, _ = json.Marshal(obj)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// serveJWKS publishes the brainpool key as gematik does: kty EC, crv BP-256.
func (s *Server) serveJWKS(w http.ResponseWriter) {
	k, err := brainpooljws.PublicJWK(s.cfg.SigningKey.Public().(*ecdsa.PublicKey), s.st.kid, "sig")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": []any{k}})
}

// resign takes the claims of a token the provider issued, applies the audience fault and signs
// them with the published key (or, with ForgeSignature, with the unpublished one under its key ID).
func (s *Server) resign(tok string, f Faults) (string, error) {
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
		return "", err
	}
	if len(f.Audience) > 0 {
		claims["aud"] = f.Audience
		delete(claims, "azp")
	}
	payload, _ := json.Marshal(claims)
	key := s.cfg.SigningKey
	if f.ForgeSignature {
		key = s.forged
	}
	h := jws.NewHeaders()
	h.Set(jws.KeyIDKey, s.st.kid)
	h.Set(jws.TypeKey, "JWT")
	out, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(s.alg), key, jws.WithProtectedHeaders(h)))
	return string(out), err
}

// SetIdentity changes the identity of the next sign-ins.
func (s *Server) SetIdentity(id Identity) {
	s.st.mu.Lock()
	s.st.identity = id
	s.st.mu.Unlock()
}

// SetFaults changes the faults of the next ID_TOKENs.
func (s *Server) SetFaults(f Faults) {
	s.st.mu.Lock()
	s.st.faults = f
	s.st.mu.Unlock()
}

// PublicKey is the key the JWKS publishes.
func (s *Server) PublicKey() crypto.PublicKey { return s.cfg.SigningKey.Public() }

// login completes an authorisation request at once as the configured identity (the SMC-B and its
// PIN are taken as presented) and sends the browser back through the provider's callback.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	s.st.mu.Lock()
	req, ok := s.st.requests[id]
	if ok {
		req.done, req.subject, req.authTime, req.identity = true, s.st.identity.Subject, time.Now(), s.st.identity
		if req.subject == "" {
			req.subject = s.st.identity.IDNummer
		}
	}
	s.st.mu.Unlock()
	if !ok {
		http.Error(w, "unknown authorisation request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, strings.TrimRight(s.cfg.Issuer, "/")+"/authorize/callback?id="+id, http.StatusFound)
}

type authRequest struct {
	id                                  string
	clientID, redirectURI, state, nonce string
	scopes                              []string
	responseType                        oidc.ResponseType
	responseMode                        oidc.ResponseMode
	challenge                           *oidc.CodeChallenge
	done                                bool
	subject                             string
	authTime                            time.Time
	identity                            Identity
	faults                              Faults
	acr                                 string
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return a.acr }
func (a *authRequest) GetAMR() []string                      { return []string{"mfa", "sc", "pin"} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }
func (a *authRequest) GetAudience() []string {
	if len(a.faults.Audience) > 0 {
		return a.faults.Audience
	}
	return []string{a.clientID}
}
func (a *authRequest) GetNonce() string {
	if a.faults.Nonce != "" {
		return a.faults.Nonce
	}
	return a.nonce
}

type tokenInfo struct {
	subject  string
	identity Identity
	expires  time.Time
}

// storage is the provider's in-memory state.
type storage struct {
	cfg      *Config
	alg      jose.SignatureAlgorithm
	key      crypto.Signer
	forged   crypto.Signer
	kid      string
	mu       sync.Mutex
	identity Identity
	faults   Faults
	requests map[string]*authRequest
	codes    map[string]string // code → request ID
	tokens   map[string]tokenInfo
}

var errNotFound = errors.New("idp: not found")

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	a := &authRequest{
		id: uuid.NewString(), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, responseType: r.ResponseType, responseMode: r.ResponseMode,
	}
	if r.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) > 10000 {
		return nil, errors.New("idp: too many open requests")
	}
	a.faults, a.acr = s.faults, s.cfg.ACR
	if s.faults.ACR != "" {
		a.acr = s.faults.ACR
	}
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[s.codes[code]]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	id := uuid.NewString()
	exp := time.Now().Add(5 * time.Minute)
	info := tokenInfo{subject: r.GetSubject(), expires: exp}
	if a, ok := r.(*authRequest); ok {
		info.identity = a.identity
	}
	s.mu.Lock()
	for k, t := range s.tokens { // bounded: expired tokens go on every issue
		if time.Now().After(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[id] = info
	s.mu.Unlock()
	return id, exp, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("idp: refresh tokens are not issued")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, tok, _, _ string) *oidc.Error {
	s.mu.Lock()
	delete(s.tokens, tok)
	s.mu.Unlock()
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type signingKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
	id  string
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key.Public() }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.ForgeSignature {
		return signingKey{s.alg, s.forged, s.kid}, nil
	}
	return signingKey{s.alg, s.key, s.kid}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.alg}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{s.alg, s.key, s.kid}}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	for _, c := range s.cfg.Clients {
		if c.ID == id {
			s.mu.Lock()
			expired := s.faults.Expired
			s.mu.Unlock()
			return &client{c: c, issuer: strings.TrimRight(s.cfg.Issuer, "/"), lifetime: s.cfg.Lifetime, expired: expired}, nil
		}
	}
	return nil, errNotFound
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	for _, c := range s.cfg.Clients {
		if c.ID == id && c.Secret == secret {
			return nil
		}
	}
	return errors.New("idp: client authentication failed")
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func setClaims(u *oidc.UserInfo, subject string, id Identity) {
	u.Subject = subject
	if id.ProfessionOID != "" {
		u.AppendClaims("professionOID", id.ProfessionOID)
	}
	if id.IDNummer != "" {
		u.AppendClaims("idNummer", id.IDNummer)
	}
	if id.OrganizationName != "" {
		u.AppendClaims("organizationName", id.OrganizationName)
	}
	for k, v := range id.Extra {
		u.AppendClaims(k, v)
	}
}

// SetUserinfoFromRequest puts the SMC-B's claims into the ID_TOKEN.
func (s *storage) SetUserinfoFromRequest(_ context.Context, u *oidc.UserInfo, r op.IDTokenRequest, _ []string) error {
	if a, ok := r.(*authRequest); ok {
		setClaims(u, a.subject, a.identity)
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, u *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	info, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(info.expires) {
		return errors.New("idp: token invalid")
	}
	setClaims(u, info.subject, info.identity)
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("idp: introspection is not offered")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

type client struct {
	c        Client
	issuer   string
	lifetime time.Duration
	expired  bool
}

func (c *client) GetID() string                       { return c.c.ID }
func (c *client) RedirectURIs() []string              { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string            { return c.issuer + "/login?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) DevMode() bool                        { return true }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IsScopeAllowed(scope string) bool     { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IDTokenLifetime() time.Duration {
	if c.expired {
		return -10 * time.Minute
	}
	return c.lifetime
}
