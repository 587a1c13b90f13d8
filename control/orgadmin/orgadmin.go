// Package orgadmin is the registration service's front end for organisations (I_Registration,
// gemSpec_TI-Messenger-FD 5.1.1.1.1): onboarding with the SMC-B (OIDC or KIM), the one Org-Admin
// account per organisation (password plus TOTP, or the SMC-B again), the organisation's messenger
// services (Matrix domains entered into the VZD federation after the operator's out-of-band
// confirmation, A_23521), blocking users (A_23613) and the RegService OpenID token (I_requestToken).
//
// Every operation is offered twice: as server-rendered HTML forms under /orgadmin/ (no JavaScript
// needed) and as a JSON API under /orgadmin/api/v1/ (openapi.yaml). The portal authenticates with
// a session cookie and CSRF tokens, the API with the same session as a bearer token.
package orgadmin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/vzd"
)

// TokenIssuer issues the RegService OpenID token (I_requestToken) for an authenticated Org-Admin.
type TokenIssuer interface {
	IssueToken(ctx context.Context, professionOID, idNummer string) (string, error)
}

// UserBlocker blocks users of the organisation's messenger services and ends their sessions.
type UserBlocker interface {
	Block(ctx context.Context, mxid string) error
	Unblock(ctx context.Context, mxid string) error
	EndSessions(ctx context.Context, mxid string) error
}

// PasswordSetter, when the UserBlocker implements it, gives a user of the homeserver a new login
// password: on Dendrite, whose blocking and ending of sessions replace the password, the user needs
// one to log in again (control/userblock).
type PasswordSetter interface {
	SetPassword(ctx context.Context, mxid, password string) error
}

// Organisations is the organisation check (control/orgcheck): Allowed refuses a suspended
// organisation (inactive in the VZD for longer than the grace period, or decommissioned) with an error
// wrapping orgcheck.ErrSuspended; Reinstate lifts a suspension for inactivity after the organisation
// authenticated with its SMC-B again.
type Organisations interface {
	Allowed(ctx context.Context, telematikID string) error
	Reinstate(ctx context.Context, telematikID string) error
}

// Federation enters and removes domains in the VZD's federation (control/vzd.Client).
type Federation interface {
	AddDomain(ctx context.Context, d vzd.Domain) (vzd.Domain, error)
	DeleteDomain(ctx context.Context, domain string) error
}

// Options configure the handler. Store and Federation are required; OIDC and KIM each offer one
// onboarding procedure (at least one); Tokens and Blocker, when nil, make their operations answer
// 503.
type Options struct {
	Store      *store.Store
	OIDC       *onboarding.OIDC
	KIM        *onboarding.KIM
	Federation Federation
	Tokens     TokenIssuer
	Blocker    UserBlocker
	// Organisations, when set, keeps suspended organisations from ordering services, having orders
	// approved and requesting tokens (A_23094).
	Organisations Organisations
	// SecretKey (at least 32 bytes) keys the CSRF tokens of visitors without a session and encrypts
	// the TOTP secrets at rest. Replicas sharing a database need the same key.
	SecretKey    []byte
	SessionTTL   time.Duration // default 30 min
	TicketTTL    time.Duration // onboarding to finished account, default 30 min
	MaxFailures  int           // failed logins before the lockout starts, default 5
	LockoutBase  time.Duration // first lockout, doubled per further failure, default 1 min
	LockoutMax   time.Duration // default 1 h
	MaxServices  int           // per organisation, default 20
	MaxBodyBytes int64         // default 16 KiB
	TOTPIssuer   string        // shown in authenticator apps, default "TI-Messenger"
	Now          func() time.Time
	Logger       *slog.Logger
}

// Handler serves the portal, the JSON API and (OperatorHandler) the operator's endpoints.
type Handler struct {
	o        Options
	mux      *http.ServeMux
	op       *http.ServeMux
	csrfKey  []byte
	totpAEAD cipher.AEAD
}

// derive makes a key for one purpose from the secret key.
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tim-orgadmin/" + purpose))
	return m.Sum(nil)
}

// sealTOTP encrypts a TOTP secret for storage, bound to the account's username.
func (h *Handler) sealTOTP(username, secret string) string {
	nonce := make([]byte, h.totpAEAD.NonceSize())
	rand.Read(nonce)
	return "v1:" + base64.RawStdEncoding.EncodeToString(h.totpAEAD.Seal(nonce, nonce, []byte(secret), []byte("totp:"+username)))
}

// openTOTP decrypts a stored TOTP secret.
func (h *Handler) openTOTP(username, sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil || !strings.HasPrefix(sealed, "v1:") || len(raw) < h.totpAEAD.NonceSize() {
		return "", errors.New("orgadmin: stored TOTP secret unreadable")
	}
	n := h.totpAEAD.NonceSize()
	plain, err := h.totpAEAD.Open(nil, raw[:n], raw[n:], []byte("totp:"+username))
	if err != nil {
		return "", errors.New("orgadmin: stored TOTP secret does not open with this key")
	}
	return string(plain), nil
}

// New checks the options and builds the routes.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Federation == nil {
		return nil, errors.New("orgadmin: store and federation are required")
	}
	if o.OIDC == nil && o.KIM == nil {
		return nil, errors.New("orgadmin: at least one onboarding procedure (oidc, kim) is required")
	}
	if len(o.SecretKey) < 32 {
		return nil, errors.New("orgadmin: the secret key must have at least 32 bytes")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SessionTTL, 30*time.Minute)
	def(&o.TicketTTL, 30*time.Minute)
	def(&o.LockoutBase, time.Minute)
	def(&o.LockoutMax, time.Hour)
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.MaxServices <= 0 {
		o.MaxServices = 20
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 16 << 10
	}
	if o.TOTPIssuer == "" {
		o.TOTPIssuer = "TI-Messenger"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Handler{o: o, mux: http.NewServeMux(), op: http.NewServeMux(), csrfKey: derive(o.SecretKey, "csrf")}
	block, err := aes.NewCipher(derive(o.SecretKey, "totp"))
	if err != nil {
		return nil, err
	}
	if h.totpAEAD, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	h.portalRoutes()
	h.apiRoutes()
	h.operatorRoutes()
	return h, nil
}

// ServeHTTP serves /orgadmin/... on the public listener.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'self' 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
	r.Body = http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes)
	h.mux.ServeHTTP(w, r)
}

// OperatorHandler serves /internal/v1/registration/... ; mount it behind the internal listener's
// authentication.
func (h *Handler) OperatorHandler() http.Handler { return h.op }

// Cookies. All are Secure and HttpOnly; SameSite=Lax lets the IDP's redirect back carry them while
// cross-site form posts do not (and those also fail the CSRF check).
const (
	cookieSession = "tim_orgadmin_session"
	cookieBrowser = "tim_orgadmin_browser"
	cookieTicket  = "tim_orgadmin_onboarding"
	cookiePath    = "/orgadmin"
)

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: cookiePath, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if ttl > 0 {
		c.MaxAge = int(ttl / time.Second)
	} else {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 128 {
		return ""
	}
	return c.Value
}

// browserID returns the visitor's browser cookie, setting one when absent. It binds OIDC requests
// to the browser that started them and keys the CSRF tokens of visitors without a session.
func (h *Handler) browserID(w http.ResponseWriter, r *http.Request) string {
	if v := cookie(r, cookieBrowser); v != "" {
		return v
	}
	v := onboarding.RandomToken()
	h.setCookie(w, cookieBrowser, v, 24*time.Hour)
	r.AddCookie(&http.Cookie{Name: cookieBrowser, Value: v})
	return v
}

// principal is the authenticated Org-Admin of a request.
type principal struct {
	admin   store.OrgAdmin
	session store.OrgSession
	bearer  bool
}

// authenticate finds the session of a request: the bearer token (API) or the session cookie (portal).
func (h *Handler) authenticate(r *http.Request) (*principal, error) {
	tok, bearer := "", false
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, v, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || len(v) > 128 {
			return nil, store.ErrNotFound
		}
		tok, bearer = strings.TrimSpace(v), true
	} else {
		tok = cookie(r, cookieSession)
	}
	if tok == "" {
		return nil, store.ErrNotFound
	}
	s, err := h.o.Store.OrgSessionByHash(r.Context(), onboarding.Hash("session", tok), h.o.Now())
	if err != nil {
		return nil, err
	}
	a, err := h.o.Store.OrgAdminByID(r.Context(), s.AdminID)
	if err != nil {
		return nil, err
	}
	return &principal{admin: a, session: s, bearer: bearer}, nil
}

// newSession starts a session for the admin and returns its secret.
func (h *Handler) newSession(ctx context.Context, adminID string) (string, time.Time, error) {
	tok := onboarding.RandomToken()
	exp := h.o.Now().Add(h.o.SessionTTL)
	err := h.o.Store.CreateOrgSession(ctx, store.OrgSession{TokenHash: onboarding.Hash("session", tok), AdminID: adminID, CSRF: onboarding.RandomToken(), ExpiresAt: exp})
	return tok, exp, err
}

// csrfToken is the token a form of this request must carry back: the session's own when logged
// in, else an HMAC of the browser cookie.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request, p *principal) string {
	if p != nil {
		return p.session.CSRF
	}
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(h.browserID(w, r)))
	return hex.EncodeToString(m.Sum(nil))
}

// checkCSRF guards every state-changing portal request: the form's csrf_token must match and a
// cross-site Origin is refused outright. Bearer-authenticated API calls carry no ambient
// credentials and need no token.
func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request, p *principal) bool {
	if p != nil && p.bearer {
		return true
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	if p == nil && cookie(r, cookieBrowser) == "" {
		return false
	}
	got := r.PostFormValue("csrf_token")
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	want := h.csrfToken(w, r, p)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func escape(s string) string { return url.PathEscape(s) }
