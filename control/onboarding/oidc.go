package onboarding

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/timfd/fachdienst/control/store"
)

// OIDCConfig registers the registration service as a client of the central IDP.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string   // this service's callback, as registered at the IDP
	Scopes       []string // "openid" is always requested
	// ACRValues, when set, are requested and the ID_TOKEN's acr must be one of them.
	ACRValues  []string
	RequestTTL time.Duration // how long an authorisation request may stay unanswered
	HTTPClient *http.Client
}

// Errors of the OIDC procedure; each is shown to the user as the reason of a refusal.
var (
	ErrStateUnknown = errors.New("onboarding: the sign-in answer does not belong to a sign-in started in this browser, was answered before, or has expired")
	ErrTokenInvalid = errors.New("onboarding: the IDP's ID_TOKEN was not accepted")
	ErrClaims       = errors.New("onboarding: the ID_TOKEN lacks professionOID, idNummer or organizationName")
	ErrIDP          = errors.New("onboarding: the IDP cannot be reached")
	ErrBusy         = errors.New("onboarding: too many sign-ins are in progress")
)

// MaxOpenRequests bounds the stored, unanswered authorisation requests (anyone can start one).
const MaxOpenRequests = 10000

// OIDC runs the authorisation code flow with PKCE, state and nonce against the IDP and validates
// the ID_TOKEN (signature by the IDP's JWKS, iss, aud, azp, exp, iat, nonce, acr) with
// zitadel/oidc's relying party and ID_TOKEN verifier; signatures are checked by jwksKeySet, which
// knows BP256R1 (idtoken.go).
type OIDC struct {
	cfg   OIDCConfig
	store *store.Store
	now   func() time.Time

	mu       sync.Mutex
	rp       rp.RelyingParty     // discovered on first use, so the control plane starts while the IDP is away
	verifier *rp.IDTokenVerifier // with the IDP's JWKS as jwksKeySet
}

type nonceKey struct{}

// NewOIDC checks the configuration; it contacts the IDP only when a flow starts.
func NewOIDC(cfg OIDCConfig, st *store.Store, now func() time.Time) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("onboarding: oidc issuer, client_id and redirect_url are required")
	}
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = 10 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &OIDC{cfg: cfg, store: st, now: now}, nil
}

func (o *OIDC) relyingParty(ctx context.Context) (rp.RelyingParty, *rp.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rp != nil {
		return o.rp, o.verifier, nil
	}
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range o.cfg.Scopes {
		if s != oidc.ScopeOpenID {
			scopes = append(scopes, s)
		}
	}
	vopts := []rp.VerifierOption{
		rp.WithNonce(func(ctx context.Context) string { v, _ := ctx.Value(nonceKey{}).(string); return v }),
		rp.WithIssuedAtOffset(time.Minute),
		rp.WithSupportedSigningAlgorithms(SigningAlgs...),
	}
	if len(o.cfg.ACRValues) > 0 {
		vopts = append(vopts, rp.WithACRVerifier(oidc.DefaultACRVerifier(o.cfg.ACRValues)))
	}
	var opts []rp.Option
	if o.cfg.HTTPClient != nil {
		opts = append(opts, rp.WithHTTPClient(o.cfg.HTTPClient))
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := rp.NewRelyingPartyOIDC(dctx, o.cfg.Issuer, o.cfg.ClientID, o.cfg.ClientSecret, o.cfg.RedirectURL, scopes, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrIDP, err)
	}
	// The relying party does not expose the discovered jwks_uri; it is read from the same document.
	disc, err := client.Discover(dctx, o.cfg.Issuer, r.HttpClient())
	if err != nil || disc.JwksURI == "" {
		return nil, nil, fmt.Errorf("%w: discovery names no jwks_uri (%v)", ErrIDP, err)
	}
	keys := newJWKSKeySet(disc.JwksURI, r.HttpClient(), o.now)
	o.rp, o.verifier = r, rp.NewIDTokenVerifier(r.Issuer(), o.cfg.ClientID, keys, vopts...)
	return o.rp, o.verifier, nil
}

// Start records a new authorisation request bound to the browser (browserHash) and returns the
// IDP's authorisation URL to send the browser to. purpose travels with the request ("onboard" or
// "login").
func (o *OIDC) Start(ctx context.Context, purpose, browserHash string) (string, error) {
	r, _, err := o.relyingParty(ctx)
	if err != nil {
		return "", err
	}
	if n, err := o.store.OpenOIDCRequests(ctx, o.now()); err != nil {
		return "", err
	} else if n >= MaxOpenRequests {
		return "", ErrBusy
	}
	p := store.OIDCPending{
		State: RandomToken(), Nonce: RandomToken(), Verifier: oauth2.GenerateVerifier(),
		BrowserHash: browserHash, Purpose: purpose, ExpiresAt: o.now().Add(o.cfg.RequestTTL),
	}
	if err := o.store.PutOIDCPending(ctx, p); err != nil {
		return "", err
	}
	opts := []rp.AuthURLOpt{rp.WithCodeChallenge(oidc.NewSHACodeChallenge(p.Verifier)), rp.AuthURLOpt(rp.WithURLParam("nonce", p.Nonce))}
	if len(o.cfg.ACRValues) > 0 {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("acr_values", strings.Join(o.cfg.ACRValues, " "))))
	}
	return rp.AuthURL(p.State, r, opts...), nil
}

// Finish consumes the request named by state (once: a replayed state is unknown), redeems the code
// with the PKCE verifier and validates the ID_TOKEN against the request's nonce. It returns the
// organisation and the request's purpose.
func (o *OIDC) Finish(ctx context.Context, state, code, browserHash string) (Identity, string, error) {
	if state == "" || len(state) > 128 || code == "" || len(code) > 2048 {
		return Identity{}, "", ErrStateUnknown
	}
	p, err := o.store.TakeOIDCPending(ctx, state, o.now())
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, "", ErrStateUnknown
	}
	if err != nil {
		return Identity{}, "", err
	}
	if subtle.ConstantTimeCompare([]byte(p.BrowserHash), []byte(browserHash)) != 1 {
		return Identity{}, "", ErrStateUnknown
	}
	r, verifier, err := o.relyingParty(ctx)
	if err != nil {
		return Identity{}, "", err
	}
	// The code is redeemed with the relying party's OAuth client (client authentication, PKCE);
	// the ID_TOKEN is verified by zitadel's verifier with the key set that knows BP256R1. The
	// access token is not used, so its at_hash (undefined for BP256R1 in go-jose) is not checked.
	xctx := context.WithValue(ctx, oauth2.HTTPClient, r.HttpClient())
	tok, err := r.OAuthConfig().Exchange(xctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return Identity{}, "", fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, "", fmt.Errorf("%w: no ID_TOKEN", ErrTokenInvalid)
	}
	vctx := withRawToken(context.WithValue(ctx, nonceKey{}, p.Nonce), raw)
	c, err := rp.VerifyIDToken[*oidc.IDTokenClaims](vctx, raw, verifier)
	if err != nil {
		return Identity{}, "", fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	claim := func(name string) string { v, _ := c.Claims[name].(string); return strings.TrimSpace(v) }
	id := Identity{TelematikID: claim("idNummer"), ProfessionOID: claim("professionOID"), OrgName: claim("organizationName"), Method: "oidc"}
	if id.TelematikID == "" || id.ProfessionOID == "" || id.OrgName == "" || len(id.TelematikID) > 128 || len(id.OrgName) > 256 {
		return Identity{}, "", ErrClaims
	}
	if _, err := CheckInstitution(id.ProfessionOID); err != nil {
		return Identity{}, "", err
	}
	return id, p.Purpose, nil
}
