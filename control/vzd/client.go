// Package vzd is the client of the VZD-FHIR-Directory's provider interfaces that the registration service
// needs: I_VZD_TI_Provider_Authenticate_Service (provider access token) and I_VZD_TIM_Provider_Services
// 1.3/1.4 (federation list, whereIs localization, domain administration, federationCheck).
//
// Authentication is two-step, as the VZD prescribes: an OAuth2 client-credentials token from the VZD's
// Keycloak realm "TI-Provider" is exchanged at GET /ti-provider-authenticate for a provider access token,
// which authorises the /tim-provider-services calls. Both tokens are cached; the provider token is renewed
// shortly before it expires and once more when a call is answered 401.
//
// Every call has a per-attempt timeout and is retried with exponential backoff on network errors and 5xx
// answers only; 4xx answers are returned at once as *APIError (errors.Is with ErrBadRequest, ErrConflict,
// ErrNotFound, ErrUnauthorized, ErrForbidden). Every attempt is counted in Prometheus metrics. Tokens and
// MXIDs never reach the log.
package vzd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Paths relative to Config.BaseURL when the individual URLs are not configured; they are the paths under
// which the VZD (and standin/vzd) serve the three interfaces on one host.
const (
	DefaultTokenPath        = "/auth/realms/TI-Provider/protocol/openid-connect/token"
	DefaultAuthenticatePath = "/ti-provider-authenticate"
	DefaultServicesPath     = "/tim-provider-services"
)

// Bounds for answers read into memory. The federation list of the TI is a few hundred kilobytes; the cap
// leaves ample room without letting a broken peer exhaust memory.
const (
	maxListBytes  = 16 << 20
	maxSmallBytes = 1 << 20
)

// Config configures a Client. BaseURL alone suffices when the VZD serves all three interfaces on one
// host; otherwise set TokenURL, AuthenticateURL and ServicesURL individually.
type Config struct {
	BaseURL         string // e.g. https://vzd.example (or …/tim-provider-services); used for the URLs left empty below
	TokenURL        string // OAuth2 token endpoint (Keycloak realm TI-Provider)
	AuthenticateURL string // full URL of GET /ti-provider-authenticate
	ServicesURL     string // base of I_VZD_TIM_Provider_Services, e.g. https://…/tim-provider-services

	ClientID     string
	ClientSecret string
	Scopes       []string // default: ti-provider

	// SigAlg asks the VZD for a list signed with "BP256R1" (the VZD's default) or "ES256"; empty omits it.
	SigAlg string

	// RootCAsPEM replaces the system roots for TLS to the VZD when set (the TI's own CAs).
	RootCAsPEM []byte

	Timeout     time.Duration // per attempt; default 10 s
	MaxAttempts int           // total attempts for retryable failures; default 4
	BackoffBase time.Duration // first backoff; doubled per attempt; default 250 ms
	BackoffMax  time.Duration // default 5 s
	// RenewBefore is how long before its expiry a cached provider token is replaced; default 60 s, at most
	// half the token's lifetime.
	RenewBefore time.Duration

	// HTTPClient, when set, is used as is (its Transport must already trust the VZD); Timeout still applies.
	HTTPClient *http.Client
	Metrics    *Metrics
	Logger     *slog.Logger
	Now        func() time.Time // for token expiry; default time.Now
}

// Client talks to the VZD-FHIR-Directory. It is safe for concurrent use.
type Client struct {
	cfg      Config
	http     *http.Client
	cc       *clientcredentials.Config
	oauth    oauth2.TokenSource // used and replaced only while holding fetching
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
	services string
	authURL  string

	// fetching admits one token exchange at a time; waiting for it respects the caller's context, which a
	// mutex held across the exchange would not.
	fetching    chan struct{}
	mu          sync.Mutex // guards provToken and provExpires
	provToken   string
	provExpires time.Time
}

// New validates cfg and returns a Client. It does not contact the VZD.
func New(cfg Config) (*Client, error) {
	// A BaseURL that already names the services (as the VZD's interface file lists its servers) is taken
	// as such, so that both ways of writing it work.
	base := strings.TrimSuffix(strings.TrimRight(cfg.BaseURL, "/"), DefaultServicesPath)
	if cfg.TokenURL == "" {
		cfg.TokenURL = joinURL(base, DefaultTokenPath)
	}
	if cfg.AuthenticateURL == "" {
		cfg.AuthenticateURL = joinURL(base, DefaultAuthenticatePath)
	}
	if cfg.ServicesURL == "" {
		cfg.ServicesURL = joinURL(base, DefaultServicesPath)
	}
	for name, u := range map[string]string{"token URL": cfg.TokenURL, "authenticate URL": cfg.AuthenticateURL, "services URL": cfg.ServicesURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("vzd: %s %q is not an absolute http(s) URL", name, u)
		}
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("vzd: client id and client secret are required")
	}
	if cfg.SigAlg != "" && cfg.SigAlg != "BP256R1" && cfg.SigAlg != "ES256" {
		return nil, fmt.Errorf("vzd: sigAlg %q: want BP256R1 or ES256", cfg.SigAlg)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"ti-provider"}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 250 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Second
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}

	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if len(cfg.RootCAsPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(cfg.RootCAsPEM) {
				return nil, errors.New("vzd: no certificate found in the root CA PEM")
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr}
	}
	hc = &http.Client{Transport: hc.Transport, Timeout: cfg.Timeout, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar}

	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       cfg.Scopes,
	}
	c := &Client{
		cfg:      cfg,
		http:     hc,
		cc:       cc,
		metrics:  cfg.Metrics,
		log:      cfg.Logger.With("component", "vzd"),
		now:      cfg.Now,
		services: strings.TrimRight(cfg.ServicesURL, "/"),
		authURL:  cfg.AuthenticateURL,
		fetching: make(chan struct{}, 1),
	}
	c.resetOAuth()
	return c, nil
}

// resetOAuth starts a fresh OAuth2 token cache. The token source lives as long as the client; its context
// only carries the HTTP client (with the configured roots) for the token requests it will make.
func (c *Client) resetOAuth() {
	c.oauth = c.cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, c.http))
}

func joinURL(base, path string) string {
	if base == "" {
		return ""
	}
	return base + path
}

// Domain is a TI-Messenger domain entry of the VZD (schema Domain, I_VZD_TIM_Provider_Services 1.4).
type Domain struct {
	Domain          string   `json:"domain"`
	TelematikID     string   `json:"telematikID"`
	IsInsurance     bool     `json:"isInsurance"`
	IK              []string `json:"ik,omitempty"`
	TimAnbieter     string   `json:"timAnbieter,omitempty"`
	RedirectDomains []string `json:"redirectDomains,omitempty"`
}

// Result is the directory part an MXID is registered in, as answered by whereIs (GET /localization).
type Result string

// The values of whereIs.
const (
	Org      Result = "org"      // organisation directory
	Pract    Result = "pract"    // practitioner (person) directory
	OrgPract Result = "orgPract" // both
	None     Result = "none"     // not found, or visibility restricted
)

// InOrg reports whether the MXID is listed in the organisation directory.
func (r Result) InOrg() bool { return r == Org || r == OrgPract }

// InPract reports whether the MXID is listed in the person (practitioner) directory.
func (r Result) InPract() bool { return r == Pract || r == OrgPract }

// Sentinel errors for the 4xx answers callers treat differently; match them with errors.Is.
var (
	ErrBadRequest   = errors.New("vzd: bad request")
	ErrUnauthorized = errors.New("vzd: unauthorized")
	ErrForbidden    = errors.New("vzd: forbidden")
	ErrNotFound     = errors.New("vzd: not found")
	ErrConflict     = errors.New("vzd: conflict")
)

// APIError is a non-success answer of the VZD. Message is the VZD's own error text (schema Error), which
// names attributes and states but no tokens.
type APIError struct {
	Op      string
	Status  int
	Message string
}

func (e *APIError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("vzd %s: HTTP %d: %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("vzd %s: HTTP %d", e.Op, e.Status)
}

// Unwrap maps the status to the sentinel errors.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	}
	return nil
}

// FederationList fetches the signed federation list (getFederationList). With version > 0 the VZD answers
// only when it holds a newer list; then current is true and jws nil. The JWS is returned unverified and
// byte for byte as received.
func (c *Client) FederationList(ctx context.Context, version int64) (jws []byte, current bool, err error) {
	q := url.Values{}
	if version > 0 {
		q.Set("version", strconv.FormatInt(version, 10))
	}
	if c.cfg.SigAlg != "" {
		q.Set("sigAlg", c.cfg.SigAlg)
	}
	status, body, err := c.call(ctx, "federation_list", http.MethodGet, "/FederationList/federationList.jws", q, nil, maxListBytes)
	if err != nil {
		return nil, false, err
	}
	switch status {
	case http.StatusOK:
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, false, &APIError{Op: "federation_list", Status: status, Message: "empty body"}
		}
		return bytes.TrimSpace(body), false, nil
	case http.StatusNoContent:
		return nil, true, nil
	}
	return nil, false, apiError("federation_list", status, body)
}

// Localize answers in which part of the directory an MXID ("@local:domain") is listed (whereIs). An MXID
// the VZD does not know (404) is None, not an error. It satisfies the invite decision's stage-3 lookup.
func (c *Client) Localize(ctx context.Context, mxid string) (Result, error) {
	uri, err := mxidURI(mxid)
	if err != nil {
		return None, err
	}
	status, body, err := c.call(ctx, "localization", http.MethodGet, "/localization", url.Values{"mxid": {uri}}, nil, maxSmallBytes)
	if err != nil {
		return None, err
	}
	switch status {
	case http.StatusOK:
		return parseResult(body)
	case http.StatusNotFound:
		return None, nil
	}
	// The VZD's error text may echo the MXID; keep only the status.
	return None, &APIError{Op: "localization", Status: status}
}

// mxidURI converts "@local:domain" to the URL form whereIs expects, "matrix:u/local:domain" (1.3.9+).
func mxidURI(mxid string) (string, error) {
	local, domain, ok := strings.Cut(strings.TrimPrefix(mxid, "@"), ":")
	if !strings.HasPrefix(mxid, "@") || !ok || local == "" || domain == "" || len(mxid) > 255 {
		return "", fmt.Errorf("vzd: %w: not an MXID", ErrBadRequest)
	}
	return "matrix:u/" + local + ":" + domain, nil
}

func parseResult(body []byte) (Result, error) {
	body = bytes.TrimSpace(body)
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		// Some deployments answer the bare word; accept it, nothing else.
		s = string(body)
	}
	switch r := Result(s); r {
	case Org, Pract, OrgPract, None:
		return r, nil
	}
	return None, fmt.Errorf("vzd localization: unexpected answer (%d bytes)", len(body))
}

// AddDomain registers a domain in the federation (addTiMessengerDomain). A domain that already exists
// yields an error matching ErrConflict; one the VZD refuses (e.g. inactive organisation) ErrBadRequest.
func (c *Client) AddDomain(ctx context.Context, d Domain) (Domain, error) {
	d.TimAnbieter = "" // read-only: the VZD sets it
	payload, err := json.Marshal(d)
	if err != nil {
		return Domain{}, err
	}
	status, body, err := c.call(ctx, "add_domain", http.MethodPost, "/federation", nil, payload, maxSmallBytes)
	if err != nil {
		return Domain{}, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return Domain{}, apiError("add_domain", status, body)
	}
	var out Domain
	if err := json.Unmarshal(body, &out); err != nil {
		return Domain{}, fmt.Errorf("vzd add_domain: decoding answer: %w", err)
	}
	return out, nil
}

// DeleteDomain removes a domain of this provider from the federation (deleteTiMessengerDomain).
func (c *Client) DeleteDomain(ctx context.Context, domain string) error {
	if domain == "" || strings.ContainsAny(domain, "/?#") {
		return fmt.Errorf("vzd: %w: invalid domain", ErrBadRequest)
	}
	status, body, err := c.call(ctx, "delete_domain", http.MethodDelete, "/federation/"+url.PathEscape(domain), nil, nil, maxSmallBytes)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent && status != http.StatusOK {
		return apiError("delete_domain", status, body)
	}
	return nil
}

// Domains lists this provider's domains (getTiMessengerDomain), or with domain set only that one; a
// domain of another provider yields ErrForbidden, an unknown one ErrNotFound.
func (c *Client) Domains(ctx context.Context, domain string) ([]Domain, error) {
	var q url.Values
	if domain != "" {
		q = url.Values{"domain": {domain}}
	}
	status, body, err := c.call(ctx, "get_domains", http.MethodGet, "/federation", q, nil, maxSmallBytes)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, apiError("get_domains", status, body)
	}
	var out []Domain
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("vzd get_domains: decoding answer: %w", err)
	}
	return out, nil
}

// UpdateDomain changes a domain of this provider (updateTiMessengerDomain), e.g. its redirectDomains
// or IKs; d.Domain names it. timAnbieter is read-only and never sent.
func (c *Client) UpdateDomain(ctx context.Context, d Domain) (Domain, error) {
	if d.Domain == "" || strings.ContainsAny(d.Domain, "/?#") {
		return Domain{}, fmt.Errorf("vzd: %w: invalid domain", ErrBadRequest)
	}
	d.TimAnbieter = ""
	payload, err := json.Marshal(d)
	if err != nil {
		return Domain{}, err
	}
	status, body, err := c.call(ctx, "update_domain", http.MethodPut, "/federation/"+url.PathEscape(d.Domain), nil, payload, maxSmallBytes)
	if err != nil {
		return Domain{}, err
	}
	if status != http.StatusOK {
		return Domain{}, apiError("update_domain", status, body)
	}
	var out Domain
	if err := json.Unmarshal(body, &out); err != nil {
		return Domain{}, fmt.Errorf("vzd update_domain: decoding answer: %w", err)
	}
	return out, nil
}

// FederationCheck lists this provider's domains whose organisation is no longer active
// (checkTiMessengerDomains); an empty result means all are fine.
func (c *Client) FederationCheck(ctx context.Context) ([]Domain, error) {
	status, body, err := c.call(ctx, "federation_check", http.MethodGet, "/federationCheck", nil, nil, maxSmallBytes)
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
		var out struct {
			Inactive []Domain `json:"inactiveOrganizationDomains"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("vzd federation_check: decoding answer: %w", err)
		}
		return out.Inactive, nil
	}
	return nil, apiError("federation_check", status, body)
}

func apiError(op string, status int, body []byte) error {
	var e struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Message
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return &APIError{Op: op, Status: status, Message: msg}
}

// call performs one provider-services operation with retries. It returns the final status and body for
// the caller to interpret; err is set only when no answer could be obtained (or the token exchange failed).
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, payload []byte, limit int64) (int, []byte, error) {
	u := c.services + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	reauthorised := false
	var lastErr error
	for attempt := 1; ; attempt++ {
		tok, err := c.providerToken(ctx)
		if err != nil {
			return 0, nil, err
		}
		status, body, err := c.attempt(ctx, op, method, u, tok, payload, limit)
		switch {
		case err == nil && status == http.StatusUnauthorized && !reauthorised:
			// The provider token was revoked or expired early: fetch a new one once, without
			// counting it as a retry.
			reauthorised = true
			c.dropProviderToken(tok)
			attempt--
			continue
		case err == nil && status < 500:
			return status, body, nil
		case err == nil && op == "localization":
			lastErr = &APIError{Op: op, Status: status} // the VZD's text may echo the MXID
		case err == nil:
			lastErr = apiError(op, status, body)
		default:
			lastErr = err
		}
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("vzd %s: %w", op, ctx.Err())
		}
		if attempt >= c.cfg.MaxAttempts {
			return 0, nil, fmt.Errorf("vzd %s: giving up after %d attempts: %w", op, attempt, lastErr)
		}
		c.log.Debug("vzd call failed, retrying", "op", op, "attempt", attempt, "error", lastErr.Error())
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return 0, nil, fmt.Errorf("vzd %s: %w (last error: %v)", op, err, lastErr)
		}
	}
}

// backoff is the wait after the given failed attempt: base·2^(attempt-1), capped, with up to 20 % jitter
// so that replicas do not retry in step.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << (attempt - 1)
	if d > c.cfg.BackoffMax || d <= 0 {
		d = c.cfg.BackoffMax
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) attempt(ctx context.Context, op, method, u, token string, payload []byte, limit int64) (int, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.observe(op, outcomeOf(0, err), time.Since(start))
		return 0, nil, scrub(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.metrics.observe(op, outcomeOf(resp.StatusCode, err), time.Since(start))
	if err != nil {
		return 0, nil, scrub(err)
	}
	if int64(len(body)) > limit {
		return 0, nil, fmt.Errorf("vzd %s: answer larger than %d bytes", op, limit)
	}
	return resp.StatusCode, body, nil
}

// scrub removes the query string from *url.Error so that MXIDs in whereIs queries stay out of messages.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if p, perr := url.Parse(ue.URL); perr == nil {
			p.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: p.String(), Err: ue.Err}
		}
	}
	return err
}

func outcomeOf(status int, err error) string {
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return "timeout"
		}
		return "network_error"
	}
	return strconv.Itoa(status)
}

// providerToken returns a cached provider access token, exchanging a fresh OAuth2 token for a new one when
// the cached one is missing or close to expiry.
func (c *Client) providerToken(ctx context.Context) (string, error) {
	if tok, ok := c.cachedToken(); ok {
		return tok, nil
	}
	select {
	case c.fetching <- struct{}{}:
		defer func() { <-c.fetching }()
	case <-ctx.Done():
		return "", fmt.Errorf("vzd: waiting for the provider token: %w", ctx.Err())
	}
	// Another caller may have renewed it while this one waited.
	if tok, ok := c.cachedToken(); ok {
		return tok, nil
	}
	var lastErr error
	oauthReset := false
	for attempt := 1; ; attempt++ {
		tok, ttl, retry, err := c.authenticate(ctx)
		if errors.Is(err, ErrUnauthorized) && !oauthReset {
			// The VZD no longer accepts the cached OAuth2 token (revoked, or the realm restarted):
			// fetch a new one once.
			oauthReset = true
			c.resetOAuth()
			attempt--
			continue
		}
		if err == nil {
			renew := c.cfg.RenewBefore
			if renew > ttl/2 {
				renew = ttl / 2
			}
			c.mu.Lock()
			c.provToken, c.provExpires = tok, c.now().Add(ttl-renew)
			c.mu.Unlock()
			c.metrics.tokens.WithLabelValues("renewed").Inc()
			c.log.Info("vzd provider token renewed", "token", fingerprint(tok), "lifetime", ttl.String())
			return tok, nil
		}
		c.metrics.tokens.WithLabelValues("failed").Inc()
		lastErr = err
		if !retry || ctx.Err() != nil || attempt >= c.cfg.MaxAttempts {
			return "", fmt.Errorf("vzd: provider authentication failed: %w", lastErr)
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return "", fmt.Errorf("vzd: provider authentication: %w (last error: %v)", err, lastErr)
		}
	}
}

func (c *Client) cachedToken() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.provToken, c.provToken != "" && c.now().Before(c.provExpires)
}

// dropProviderToken forgets tok if it is still the cached one (another caller may have renewed it).
func (c *Client) dropProviderToken(tok string) {
	c.mu.Lock()
	if c.provToken == tok {
		c.provToken = ""
	}
	c.mu.Unlock()
}

// authenticate performs the two-step exchange once. retry tells whether the failure is transient.
func (c *Client) authenticate(ctx context.Context) (token string, ttl time.Duration, retry bool, err error) {
	ot, err := c.oauth.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			c.metrics.observe("oauth_token", strconv.Itoa(re.Response.StatusCode), 0)
			return "", 0, false, fmt.Errorf("OAuth2 token: HTTP %d", re.Response.StatusCode)
		}
		c.metrics.observe("oauth_token", "error", 0)
		return "", 0, true, fmt.Errorf("OAuth2 token: %w", scrub(err))
	}
	status, body, err := c.attempt(ctx, "authenticate", http.MethodGet, c.authURL, ot.AccessToken, nil, maxSmallBytes)
	if err != nil {
		return "", 0, true, err
	}
	if status != http.StatusOK {
		return "", 0, status >= 500, apiError("authenticate", status, body)
	}
	var at struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &at); err != nil || at.AccessToken == "" {
		return "", 0, false, errors.New("vzd authenticate: answer without access_token")
	}
	if at.TokenType != "" && !strings.EqualFold(at.TokenType, "bearer") {
		return "", 0, false, fmt.Errorf("vzd authenticate: unsupported token_type %q", at.TokenType)
	}
	ttl = time.Duration(at.ExpiresIn) * time.Second
	if ttl <= 0 {
		// No lifetime announced: treat it as short-lived rather than forever valid.
		ttl = 5 * time.Minute
	}
	return at.AccessToken, ttl, false, nil
}

// fingerprint names a secret in logs without revealing it.
func fingerprint(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}
