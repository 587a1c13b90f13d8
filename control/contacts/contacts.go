// Package contacts serves I_TiMessengerContactManagement: each user's release list, the MXIDs that
// may invite them and during which time window (stage 2 of the invite check).
//
// Both published versions of the interface are served, each under its base path
// (/tim-contact-mgmt/v1.0 from v1.0.0, /tim-contact-mgmt/v1.0.2 from v1.0.3). Every call carries a
// Matrix OpenID token as Bearer token; the homeserver resolves it to the caller's MXID. From 1.0.3 on
// the Mxid header is required and must equal it; 1.0.0 has no such header, so there the token's user
// is the owner (and a Mxid header, when a client sends one, must still match). A user only ever sees
// and changes their own list. Request bodies must be application/json.
package contacts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/timfd/fachdienst/control/redact"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Store is the part of the storage the API needs; *store.Store implements it.
type Store interface {
	ListContacts(ctx context.Context, owner string, limit int) ([]store.Contact, error)
	GetContact(ctx context.Context, owner, contact string) (store.Contact, error)
	CreateContact(ctx context.Context, c store.Contact, maxPerOwner int) error
	UpdateContact(ctx context.Context, c store.Contact) error
	DeleteContact(ctx context.Context, owner, contact string) error
}

// Version is one published version of the interface and the base path it is served under.
type Version struct {
	BasePath string
	Version  string // the interface file's version, reported by GET /
	// MxidHeader tells whether the version requires the Mxid header (1.0.3 does, 1.0.0 does not know it).
	MxidHeader bool
}

// Versions lists the served versions.
var Versions = []Version{
	{BasePath: "/tim-contact-mgmt/v1.0", Version: "1.0.0"},
	{BasePath: "/tim-contact-mgmt/v1.0.2", Version: "1.0.3", MxidHeader: true},
}

// Options configure the API.
type Options struct {
	Store        Store
	Verifier     Verifier
	MaxPerOwner  int
	MaxBodyBytes int64
	Contact      string // provider contact reported by GET /
	Provider     string // provider name reported by GET /
	Now          func() time.Time
	Logger       *slog.Logger
}

// API is the HTTP handler set.
type API struct {
	o Options
}

// New returns the API; zero options get safe defaults.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxPerOwner <= 0 {
		o.MaxPerOwner = 1000
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	return &API{o: o}
}

// Register adds the routes of every served version to r.
func (a *API) Register(r gin.IRouter) {
	for _, v := range Versions {
		g := r.Group(v.BasePath, a.authenticate)
		g.GET("/", a.info(v.Version))
		c := g.Group("", a.owner(v.MxidHeader))
		c.GET("/contacts", a.list)
		c.POST("/contacts", a.create)
		c.PUT("/contacts", a.update)
		// Catch-all: historical localparts may contain '/'.
		c.GET("/contacts/*mxid", a.get)
		c.DELETE("/contacts/*mxid", a.delete)
	}
}

// Error is the interface's error body.
type Error struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func fail(c *gin.Context, status int, code, msg string) {
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="tim-contact-mgmt"`)
	}
	c.AbortWithStatusJSON(status, Error{ErrorCode: code, ErrorMessage: msg})
}

const (
	ctxUser  = "contacts.user"
	ctxOwner = "contacts.owner"
)

// authenticate resolves the Bearer token to the caller's MXID.
func (a *API) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		fail(c, http.StatusUnauthorized, "UNAUTHORIZED", "a Matrix OpenID token is required as Bearer token")
		return
	}
	user, err := a.o.Verifier.Verify(c.Request.Context(), strings.TrimSpace(token))
	switch {
	case errors.Is(err, ErrInvalidToken):
		fail(c, http.StatusUnauthorized, "UNAUTHORIZED", "the Matrix OpenID token is not valid")
		return
	case err != nil:
		// Fail closed: without the homeserver's word nobody is let in.
		a.o.Logger.Warn("openid token check failed", "error", err.Error())
		fail(c, http.StatusServiceUnavailable, "UNAVAILABLE", "the token cannot be checked at the moment")
		return
	}
	c.Set(ctxUser, user)
}

// owner checks the Mxid header against the token's user; without the header, where the version does
// not require it, the token's user is the owner.
func (a *API) owner(required bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetHeader("Mxid") == "" && !required {
			c.Set(ctxOwner, c.GetString(ctxUser))
			return
		}
		a.checkOwner(c)
	}
}

func (a *API) checkOwner(c *gin.Context) {
	owner := c.GetHeader("Mxid")
	if owner == "" {
		fail(c, http.StatusBadRequest, "BAD_REQUEST", "the Mxid header is required")
		return
	}
	if _, _, err := matrix.ParseUserID(owner); err != nil {
		fail(c, http.StatusBadRequest, "BAD_REQUEST", "the Mxid header is not a valid MXID")
		return
	}
	if owner != c.GetString(ctxUser) {
		a.o.Logger.Info("contact management: Mxid header differs from token user",
			"owner", redact.ID(owner), "user", redact.ID(c.GetString(ctxUser)))
		fail(c, http.StatusForbidden, "FORBIDDEN", "the Mxid header does not match the token's user")
		return
	}
	c.Set(ctxOwner, owner)
}

type infoObject struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Contact     string `json:"contact,omitempty"`
	Version     string `json:"version"`
}

func (a *API) info(version string) gin.HandlerFunc {
	desc := "Contact Management des TI-Messengers"
	if a.o.Provider != "" {
		desc += ". Betreiber: " + a.o.Provider
	}
	body := infoObject{Title: "Contact Management des TI-Messengers", Description: desc, Contact: a.o.Contact, Version: version}
	return func(c *gin.Context) { c.JSON(http.StatusOK, body) }
}

// Contact is the interface's contact setting.
type Contact struct {
	DisplayName    *string         `json:"displayName"`
	MXID           string          `json:"mxid"`
	InviteSettings *InviteSettings `json:"inviteSettings"`
}

// InviteSettings is the time window, in Unix seconds; End is optional.
type InviteSettings struct {
	Start *int64 `json:"start"`
	End   *int64 `json:"end,omitempty"`
}

func toAPI(sc store.Contact) Contact {
	name, start := sc.DisplayName, sc.Start.Unix()
	out := Contact{DisplayName: &name, MXID: sc.Contact, InviteSettings: &InviteSettings{Start: &start}}
	if !sc.End.IsZero() {
		end := sc.End.Unix()
		out.InviteSettings.End = &end
	}
	return out
}

func (a *API) list(c *gin.Context) {
	list, err := a.o.Store.ListContacts(c.Request.Context(), c.GetString(ctxOwner), a.o.MaxPerOwner)
	if err != nil {
		a.internal(c, err)
		return
	}
	out := make([]Contact, 0, len(list))
	for _, sc := range list {
		out = append(out, toAPI(sc))
	}
	c.JSON(http.StatusOK, gin.H{"contacts": out})
}

// pathMXID takes the contact MXID from the catch-all path parameter.
func pathMXID(c *gin.Context) (string, bool) {
	m := strings.TrimPrefix(c.Param("mxid"), "/")
	if _, _, err := matrix.ParseUserID(m); err != nil {
		fail(c, http.StatusBadRequest, "BAD_REQUEST", "the path does not name a valid MXID")
		return "", false
	}
	return m, true
}

func (a *API) get(c *gin.Context) {
	m, ok := pathMXID(c)
	if !ok {
		return
	}
	sc, err := a.o.Store.GetContact(c.Request.Context(), c.GetString(ctxOwner), m)
	a.answerContact(c, sc, err)
}

// answerContact answers with the contact, or with the store's error.
func (a *API) answerContact(c *gin.Context, sc store.Contact, err error) {
	if a.storeFailed(c, err) {
		return
	}
	c.JSON(http.StatusOK, toAPI(sc))
}

// storeFailed answers a failed lookup of one contact: 404 when the owner has none for that MXID, 500
// otherwise. It reports whether it answered.
func (a *API) storeFailed(c *gin.Context, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		fail(c, http.StatusNotFound, "NOT_FOUND", "no contact setting for this MXID")
	default:
		a.internal(c, err)
	}
	return true
}

func (a *API) delete(c *gin.Context) {
	m, ok := pathMXID(c)
	if !ok {
		return
	}
	if a.storeFailed(c, a.o.Store.DeleteContact(c.Request.Context(), c.GetString(ctxOwner), m)) {
		return
	}
	c.Status(http.StatusNoContent)
}

// readContact decodes and validates a request body into a stored contact of the owner.
func (a *API) readContact(c *gin.Context) (store.Contact, bool) {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		fail(c, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "the request body must be application/json")
		return store.Contact{}, false
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, a.o.MaxBodyBytes+1))
	if err != nil {
		fail(c, http.StatusBadRequest, "BAD_REQUEST", "the request body could not be read")
		return store.Contact{}, false
	}
	if int64(len(body)) > a.o.MaxBodyBytes {
		fail(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", "the request body is too large")
		return store.Contact{}, false
	}
	var in Contact
	if err := json.Unmarshal(body, &in); err != nil {
		fail(c, http.StatusBadRequest, "BAD_REQUEST", "the request body is not a valid contact setting")
		return store.Contact{}, false
	}
	sc, msg := a.validate(c.GetString(ctxOwner), in)
	if msg != "" {
		fail(c, http.StatusBadRequest, "BAD_REQUEST", msg)
		return store.Contact{}, false
	}
	return sc, true
}

// maxDisplayName bounds the stored name (bytes).
const maxDisplayName = 256

// validate returns the contact to store, or a message naming what is wrong.
func (a *API) validate(owner string, in Contact) (store.Contact, string) {
	switch {
	case in.DisplayName == nil:
		return store.Contact{}, "displayName is required"
	case len(*in.DisplayName) > maxDisplayName:
		return store.Contact{}, "displayName is too long"
	case in.MXID == "":
		return store.Contact{}, "mxid is required"
	case in.InviteSettings == nil || in.InviteSettings.Start == nil:
		return store.Contact{}, "inviteSettings.start is required"
	}
	if _, _, err := matrix.ParseUserID(in.MXID); err != nil {
		return store.Contact{}, "mxid is not a valid MXID (@localpart:domain)"
	}
	if in.MXID == owner {
		return store.Contact{}, "mxid must not be the owner's own MXID"
	}
	start := *in.InviteSettings.Start
	if start < 0 {
		return store.Contact{}, "inviteSettings.start must not be negative"
	}
	sc := store.Contact{Owner: owner, Contact: in.MXID, DisplayName: *in.DisplayName, Start: time.Unix(start, 0).UTC()}
	if in.InviteSettings.End != nil {
		end := *in.InviteSettings.End
		if end <= start {
			return store.Contact{}, "inviteSettings.end must be after inviteSettings.start"
		}
		if end <= a.o.Now().Unix() {
			return store.Contact{}, "inviteSettings.end lies in the past"
		}
		sc.End = time.Unix(end, 0).UTC()
	}
	return sc, ""
}

func (a *API) create(c *gin.Context) {
	sc, ok := a.readContact(c)
	if !ok {
		return
	}
	err := a.o.Store.CreateContact(c.Request.Context(), sc, a.o.MaxPerOwner)
	switch {
	case errors.Is(err, store.ErrExists):
		fail(c, http.StatusConflict, "CONFLICT", "a contact setting for this MXID exists already; use PUT to change it")
		return
	case errors.Is(err, store.ErrLimit):
		fail(c, http.StatusBadRequest, "LIMIT_REACHED", "the release list is full")
		return
	case err != nil:
		a.internal(c, err)
		return
	}
	c.JSON(http.StatusOK, toAPI(sc))
}

func (a *API) update(c *gin.Context) {
	sc, ok := a.readContact(c)
	if !ok {
		return
	}
	a.answerContact(c, sc, a.o.Store.UpdateContact(c.Request.Context(), sc))
}

func (a *API) internal(c *gin.Context, err error) {
	a.o.Logger.Error("contact management: storage error", "error", err.Error())
	fail(c, http.StatusInternalServerError, "INTERNAL", "the request could not be processed")
}
