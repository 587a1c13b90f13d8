// Package internalapi serves the control plane's internal API for the messenger proxies
// (I_internalVerification, docs/architecture.md):
//
//	GET  /internal/v1/federation-list?version=N  200 JWS unchanged (application/jose, X-Federation-Version),
//	                                             204 when N is current, 503 {"status":"outdated"} after 72 h
//	GET  /internal/v1/policy?revision=R          200 {"revision","plan","data"} (X-Policy-Revision), 204 when current
//	POST /internal/v1/invite-permission          {"inviter","invitee"} -> 200 {"allow","stage","reason"}
//
// Every request must carry one of the configured shared secrets as "Authorization: Bearer <secret>"
// (several secrets may be valid at once, for rotation); anything else is answered 401. Where the proxies
// reach the control plane over mutual TLS instead, terminate mTLS in front (Envoy with
// require_client_certificate and a validation context for the proxies' CA) and keep a secret as well:
// the API is never open.
//
// The answers of the two GET endpoints are precomputed by the federation and policy packages, so the
// frequent "nothing changed" (204) path does no I/O and no encoding.
package internalapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Header names of the contract.
const (
	HeaderFederationVersion = "X-Federation-Version"
	HeaderPolicyRevision    = "X-Policy-Revision"
	ContentTypeJOSE         = "application/jose"
)

// FederationSource is the federation list lifecycle; *federation.Manager implements it.
type FederationSource interface {
	ForProxy(ctx context.Context) *federation.Snapshot
	Outdated(s *federation.Snapshot) bool
}

// PolicySource holds the policy revision; *policyserve.Server implements it.
type PolicySource interface {
	Current() *policyserve.Revision
}

// Decision is the answer of an invite-permission check.
type Decision struct {
	Allow  bool   `json:"allow"`
	Stage  int    `json:"stage"`
	Reason string `json:"reason"`
}

// InviteDecider decides stage 2/3 invite permissions (control/invite). Adapt a decider with another
// result type with InviteDeciderFunc.
type InviteDecider interface {
	DecideInvite(ctx context.Context, inviter, invitee string) (Decision, error)
}

// InviteDeciderFunc adapts a function to InviteDecider.
type InviteDeciderFunc func(ctx context.Context, inviter, invitee string) (Decision, error)

func (f InviteDeciderFunc) DecideInvite(ctx context.Context, inviter, invitee string) (Decision, error) {
	return f(ctx, inviter, invitee)
}

// Config configures the API. Secrets must be at least MinSecretLength bytes each.
type Config struct {
	Secrets    []string
	Federation FederationSource
	Policy     PolicySource
	Invite     InviteDecider
	Logger     *slog.Logger
}

// MinSecretLength is the shortest shared secret accepted.
const MinSecretLength = 16

// API is the internal API.
type API struct {
	cfg     Config
	secrets [][32]byte // SHA-256 of each secret: equal length for the constant-time compare
	log     *slog.Logger
}

// New checks cfg and returns the API.
func New(cfg Config) (*API, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("internalapi: at least one shared secret is required; the internal API is never open")
	}
	if cfg.Federation == nil || cfg.Policy == nil || cfg.Invite == nil {
		return nil, errors.New("internalapi: federation, policy and invite sources are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "internalapi")}
	for i, s := range cfg.Secrets {
		if len(s) < MinSecretLength {
			return nil, errors.New("internalapi: shared secret " + strconv.Itoa(i+1) + " is shorter than " + strconv.Itoa(MinSecretLength) + " bytes")
		}
		a.secrets = append(a.secrets, sha256.Sum256([]byte(s)))
	}
	return a, nil
}

// Register mounts the endpoints on r.
func (a *API) Register(r gin.IRouter) {
	g := r.Group("/internal/v1", a.authenticate)
	g.GET("/federation-list", a.federationList)
	g.GET("/policy", a.policy)
	g.POST("/invite-permission", a.invitePermission)
}

// Authenticate is the middleware that guards the internal API, for further operator endpoints that
// share its credential (the policy reload).
func (a *API) Authenticate() gin.HandlerFunc { return a.authenticate }

// Handler returns a gin engine serving only the internal API, for a listener of its own.
func (a *API) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(gin.Recovery())
	a.Register(e)
	return e
}

var (
	bodyUnauthorized = []byte(`{"errcode":"M_UNAUTHORIZED","error":"internal API credential missing or invalid"}`)
	bodyOutdated     = []byte(`{"status":"outdated"}`)
	bodyUnavailable  = []byte(`{"status":"unavailable"}`)
	bodyBadVersion   = []byte(`{"errcode":"M_INVALID_PARAM","error":"version must be a non-negative integer"}`)
	bodyNoPolicy     = []byte(`{"errcode":"M_UNAVAILABLE","error":"no policy revision available"}`)
	bodyNotJSON      = []byte(`{"errcode":"M_NOT_JSON","error":"body must be {\"inviter\":\"@a:x\",\"invitee\":\"@b:y\"}"}`)
	bodyBadInviter   = []byte(`{"errcode":"M_INVALID_PARAM","error":"inviter is not a valid MXID"}`)
	bodyBadInvitee   = []byte(`{"errcode":"M_INVALID_PARAM","error":"invitee is not a valid MXID"}`)
	bodyUndecided    = []byte(`{"errcode":"M_UNAVAILABLE","error":"invite permission could not be decided"}`)
	bodyTooLarge     = []byte(`{"errcode":"M_TOO_LARGE","error":"body too large"}`)
)

const jsonType = "application/json"

// authenticate accepts "Authorization: Bearer <secret>" for any configured secret. Every secret is compared
// (no early exit) on hashes of equal length, so timing reveals neither which secret nor how much matched.
func (a *API) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	const prefix = "Bearer "
	ok := 0
	if len(h) > len(prefix) && h[:len(prefix)] == prefix {
		sum := sha256.Sum256([]byte(h[len(prefix):]))
		for i := range a.secrets {
			ok |= subtle.ConstantTimeCompare(sum[:], a.secrets[i][:])
		}
	}
	if ok != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="tim-internal"`)
		c.Data(http.StatusUnauthorized, jsonType, bodyUnauthorized)
		c.Abort()
		return
	}
	c.Next()
}

// parseCounter reads a non-negative decimal query value; absent means 0.
func parseCounter(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

func (a *API) federationList(c *gin.Context) {
	known, ok := parseCounter(c.Request.URL.Query().Get("version"))
	if !ok {
		c.Data(http.StatusBadRequest, jsonType, bodyBadVersion)
		return
	}
	s := a.cfg.Federation.ForProxy(c.Request.Context())
	switch {
	case s == nil:
		c.Data(http.StatusServiceUnavailable, jsonType, bodyUnavailable)
		return
	case a.cfg.Federation.Outdated(s):
		// TTL_FederationList passed: the proxies must stop federating until a fresh list arrives.
		c.Data(http.StatusServiceUnavailable, jsonType, bodyOutdated)
		return
	}
	c.Header(HeaderFederationVersion, s.VersionHeader)
	if known >= s.Version {
		c.Status(http.StatusNoContent)
		return
	}
	c.Data(http.StatusOK, ContentTypeJOSE, s.JWS)
}

// servedPolicy is a policy source that also serves a shadow candidate and records what each proxy
// holds (*policyserve.Server).
type servedPolicy interface {
	Served() (body []byte, revision, shadow string)
	ReportHeld(policyserve.ProxyReport)
}

// HeaderProxy names the asking proxy's listener role (the filter sends it with its policy fetch).
const HeaderProxy = "X-TIM-Proxy"

func (a *API) policy(c *gin.Context) {
	rev := a.cfg.Policy.Current()
	if rev == nil {
		c.Data(http.StatusServiceUnavailable, jsonType, bodyNoPolicy)
		return
	}
	q := c.Request.URL.Query()
	body, revision, shadow := rev.Body, rev.Revision, ""
	if sp, ok := a.cfg.Policy.(servedPolicy); ok {
		body, revision, shadow = sp.Served()
		if role := c.GetHeader(HeaderProxy); role != "" && len(role) <= 64 {
			evaluated, _ := strconv.ParseInt(q.Get("shadow_evaluated"), 10, 64)
			differ, _ := strconv.ParseInt(q.Get("shadow_differ"), 10, 64)
			sp.ReportHeld(policyserve.ProxyReport{
				Proxy: role + "@" + c.ClientIP(), Revision: q.Get("revision"), Shadow: q.Get("shadow"),
				ShadowEvaluated: evaluated, ShadowDiffer: differ,
			})
		}
	}
	c.Header(HeaderPolicyRevision, revision)
	if q.Get("revision") == revision && q.Get("shadow") == shadow {
		c.Status(http.StatusNoContent)
		return
	}
	c.Data(http.StatusOK, jsonType, body)
}

// maxInviteBody bounds the invite-permission request: two MXIDs of at most 255 bytes and some JSON.
const maxInviteBody = 4 << 10

func (a *API) invitePermission(c *gin.Context) {
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, maxInviteBody+1))
	if err != nil {
		c.Data(http.StatusBadRequest, jsonType, bodyNotJSON)
		return
	}
	if len(raw) > maxInviteBody {
		c.Data(http.StatusRequestEntityTooLarge, jsonType, bodyTooLarge)
		return
	}
	var in struct {
		Inviter string `json:"inviter"`
		Invitee string `json:"invitee"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		c.Data(http.StatusBadRequest, jsonType, bodyNotJSON)
		return
	}
	if _, _, err := matrix.ParseUserID(in.Inviter); err != nil {
		c.Data(http.StatusBadRequest, jsonType, bodyBadInviter)
		return
	}
	if _, _, err := matrix.ParseUserID(in.Invitee); err != nil {
		c.Data(http.StatusBadRequest, jsonType, bodyBadInvitee)
		return
	}
	d, err := a.cfg.Invite.DecideInvite(c.Request.Context(), in.Inviter, in.Invitee)
	if err != nil {
		// Fail closed: the filter treats anything but 200 as a refusal.
		a.log.Warn("invite permission undecided", "error", err.Error())
		c.Data(http.StatusServiceUnavailable, jsonType, bodyUndecided)
		return
	}
	c.JSON(http.StatusOK, d)
}
