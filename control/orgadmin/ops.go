package orgadmin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/orgcheck"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Problem is a refusal the user sees: an HTTP status and a message that names the reason.
type Problem struct {
	Status  int
	Message string
	Details []string
}

func (p *Problem) Error() string { return p.Message }

func problem(status int, msg string, details ...string) *Problem {
	return &Problem{Status: status, Message: msg, Details: details}
}

var errInternal = problem(http.StatusInternalServerError, "Internal error; please try again later.")

// internal logs err (never identifiers) and returns the generic problem.
func (h *Handler) internal(op string, err error) *Problem {
	h.o.Logger.Error("orgadmin: "+op+" failed", "error", err.Error())
	return errInternal
}

// onboardingProblem maps the onboarding package's errors to what the user is told.
func (h *Handler) onboardingProblem(op string, err error) *Problem {
	switch {
	case errors.Is(err, onboarding.ErrOIDNotAllowed):
		return problem(http.StatusForbidden, "Registration refused: the organisation's ProfessionOID is not one of the institutions of Tab_PKI_403 (gemSpec_OID); only healthcare institutions with an SMC-B can register.", err.Error())
	case errors.Is(err, onboarding.ErrStateUnknown), errors.Is(err, onboarding.ErrClaims):
		return problem(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "onboarding: "))
	case errors.Is(err, onboarding.ErrTokenInvalid):
		h.o.Logger.Warn("orgadmin: ID_TOKEN refused", "op", op, "error", err.Error())
		return problem(http.StatusUnauthorized, "The sign-in with the SMC-B was not accepted: the IDP's ID_TOKEN is invalid (signature, issuer, audience, expiry, nonce or acr).")
	case errors.Is(err, onboarding.ErrIDP):
		h.o.Logger.Warn("orgadmin: IDP unreachable", "error", err.Error())
		return problem(http.StatusBadGateway, "The identity provider cannot be reached; please try again later.")
	case errors.Is(err, onboarding.ErrMail):
		h.o.Logger.Warn("orgadmin: KIM mail not sent", "error", err.Error())
		return problem(http.StatusBadGateway, "The authentication mail could not be sent; please try again later.")
	case errors.Is(err, onboarding.ErrTooManyMails):
		return problem(http.StatusTooManyRequests, "Too many authentication mails are open for this organisation. Use one of them, or wait until they expire.")
	case errors.Is(err, onboarding.ErrBusy):
		return problem(http.StatusServiceUnavailable, "Too many sign-ins are in progress; please try again in a few minutes.")
	case errors.Is(err, onboarding.ErrKIMAddress):
		return problem(http.StatusBadRequest, "Please enter a valid KIM address (name@domain).")
	case errors.Is(err, onboarding.ErrNotInDirectory):
		return problem(http.StatusNotFound, "This KIM address is not listed in the directory service, so the organisation cannot be identified.")
	case errors.Is(err, onboarding.ErrLinkUnknown):
		return problem(http.StatusNotFound, "This link is not known.")
	case errors.Is(err, onboarding.ErrLinkUsed):
		return problem(http.StatusGone, "This link was used already. Please start the registration again.")
	case errors.Is(err, onboarding.ErrLinkExpired):
		return problem(http.StatusGone, "This link has expired. Please start the registration again.")
	case errors.Is(err, onboarding.ErrTooManyAttempts):
		return problem(http.StatusTooManyRequests, "Too many wrong codes were entered for this link. Please start the registration again.")
	case errors.Is(err, onboarding.ErrWrongCode):
		return problem(http.StatusUnprocessableEntity, "The code does not match the six-digit code shown when the mail was ordered.")
	}
	return h.internal(op, err)
}

var errAdminExists = problem(http.StatusConflict, "An Org-Admin account already exists for this organisation. A second registration is not possible; please sign in with the existing account.")

// issueTicket starts the account creation for an authenticated organisation, unless it has an
// Org-Admin already (5.1.1.2.2: no second account, nothing overwritten).
func (h *Handler) issueTicket(ctx context.Context, id onboarding.Identity) (string, *Problem) {
	if _, err := h.o.Store.OrgAdminByTelematikID(ctx, id.TelematikID); err == nil {
		return "", errAdminExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", h.internal("ticket", err)
	}
	tok := onboarding.RandomToken()
	if err := h.o.Store.PutOnboardingTicket(ctx, store.OnboardingTicket{
		TokenHash: onboarding.Hash("ticket", tok), TelematikID: id.TelematikID, ProfessionOID: id.ProfessionOID,
		OrgName: id.OrgName, AuthMethod: id.Method, ExpiresAt: h.o.Now().Add(h.o.TicketTTL),
	}); err != nil {
		return "", h.internal("ticket", err)
	}
	return tok, nil
}

func (h *Handler) ticket(ctx context.Context, tok string) (store.OnboardingTicket, *Problem) {
	if tok == "" || len(tok) > 128 {
		return store.OnboardingTicket{}, problem(http.StatusUnauthorized, "No registration in progress, or it has expired. Please authenticate the organisation first.")
	}
	t, err := h.o.Store.OnboardingTicketByHash(ctx, onboarding.Hash("ticket", tok), h.o.Now())
	if errors.Is(err, store.ErrNotFound) {
		return t, problem(http.StatusUnauthorized, "No registration in progress, or it has expired. Please authenticate the organisation first.")
	}
	if err != nil {
		return t, h.internal("ticket", err)
	}
	return t, nil
}

func validUsername(u string) bool {
	if len(u) < 3 || len(u) > 64 {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return false
		}
	}
	return true
}

// setCredentials checks username and password and creates the TOTP secret to enrol.
func (h *Handler) setCredentials(ctx context.Context, tok, username, password, confirm string) (*otp.Key, *Problem) {
	t, p := h.ticket(ctx, tok)
	if p != nil {
		return nil, p
	}
	username = strings.ToLower(strings.TrimSpace(username))
	if !validUsername(username) {
		return nil, problem(http.StatusBadRequest, "The username must have 3 to 64 characters: lower-case letters, digits, '.', '_', '-' or '@'.")
	}
	if password != confirm {
		return nil, problem(http.StatusBadRequest, "The two passwords differ.")
	}
	if probs := PasswordProblems(password, username, t.TelematikID); len(probs) > 0 {
		return nil, problem(http.StatusBadRequest, "The password does not meet the password rules.", probs...)
	}
	if _, err := h.o.Store.OrgAdminByUsername(ctx, username); err == nil {
		return nil, problem(http.StatusConflict, "This username is taken; please choose another.")
	}
	key, err := NewTOTPKey(h.o.TOTPIssuer, username)
	if err != nil {
		return nil, h.internal("totp", err)
	}
	if err := h.o.Store.SetTicketCredentials(ctx, t.TokenHash, username, HashPassword(password), h.sealTOTP(username, key.Secret())); err != nil {
		return nil, h.internal("credentials", err)
	}
	return key, nil
}

// totpKey rebuilds the enrolment key of a ticket (for showing it again).
func (h *Handler) totpKey(t store.OnboardingTicket) (*otp.Key, error) {
	secret, err := h.openTOTP(t.Username, t.TOTPSecret)
	if err != nil {
		return nil, err
	}
	return otp.NewKeyFromURL(fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=6&period=30",
		escape(h.o.TOTPIssuer), escape(t.Username), secret, escape(h.o.TOTPIssuer)))
}

// confirmAccount takes the first TOTP code and creates the Org-Admin.
func (h *Handler) confirmAccount(ctx context.Context, tok, code string) (store.OrgAdmin, *Problem) {
	t, p := h.ticket(ctx, tok)
	if p != nil {
		return store.OrgAdmin{}, p
	}
	if t.TOTPSecret == "" {
		return store.OrgAdmin{}, problem(http.StatusConflict, "Please choose username and password first.")
	}
	secret, err := h.openTOTP(t.Username, t.TOTPSecret)
	if err != nil {
		return store.OrgAdmin{}, h.internal("totp", err)
	}
	step, err := CheckTOTP(secret, code, h.o.Now())
	if err != nil {
		return store.OrgAdmin{}, problem(http.StatusUnprocessableEntity, "The one-time code is wrong. Enter the six-digit code your authenticator app shows now.")
	}
	a := store.OrgAdmin{
		ID: onboarding.RandomToken()[:22], TelematikID: t.TelematikID, ProfessionOID: t.ProfessionOID, OrgName: t.OrgName,
		AuthMethod: t.AuthMethod, Username: t.Username, PasswordHash: t.PasswordHash, TOTPSecret: t.TOTPSecret,
		TOTPLastStep: step, CreatedAt: h.o.Now(),
	}
	if err := h.o.Store.CreateOrgAdmin(ctx, a); errors.Is(err, store.ErrExists) {
		if _, e := h.o.Store.OrgAdminByTelematikID(ctx, t.TelematikID); e == nil {
			h.o.Store.DeleteOnboardingTicket(ctx, t.TokenHash)
			return store.OrgAdmin{}, errAdminExists
		}
		return store.OrgAdmin{}, problem(http.StatusConflict, "This username is taken; please choose another.")
	} else if err != nil {
		return store.OrgAdmin{}, h.internal("create admin", err)
	}
	h.o.Store.DeleteOnboardingTicket(ctx, t.TokenHash)
	h.o.Logger.Info("orgadmin: account created", "method", a.AuthMethod)
	return a, nil
}

var errLogin = problem(http.StatusUnauthorized, "Username, password or one-time code is wrong.")

func errLocked(until time.Time, now time.Time) *Problem {
	mins := int(math.Ceil(until.Sub(now).Minutes()))
	return problem(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins. The account is locked for %d more minute(s).", mins))
}

// login checks both factors; failures count towards a lockout that doubles with each further
// failure (capped), during which no password is even checked.
func (h *Handler) login(ctx context.Context, username, password, code string) (store.OrgAdmin, *Problem) {
	now := h.o.Now()
	username = strings.ToLower(strings.TrimSpace(username))
	a, err := h.o.Store.OrgAdminByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) || !validUsername(username) {
		CheckPassword(dummyHash, password)
		return a, errLogin
	}
	if err != nil {
		return a, h.internal("login", err)
	}
	if a.LockedUntil.After(now) {
		return a, errLocked(a.LockedUntil, now)
	}
	pwOK := CheckPassword(a.PasswordHash, password)
	secret, err := h.openTOTP(a.Username, a.TOTPSecret)
	if err != nil {
		return a, h.internal("login", err)
	}
	step, totpErr := CheckTOTP(secret, code, now)
	if pwOK && totpErr == nil {
		if err := h.o.Store.RecordLoginSuccess(ctx, a.ID, step); err == nil {
			return a, nil
		} else if !errors.Is(err, store.ErrUsed) {
			return a, h.internal("login", err)
		}
		// A code already used: counts as a failure like any wrong code.
	}
	failed := a.FailedLogins + 1
	var until time.Time
	if failed >= h.o.MaxFailures {
		d := h.o.LockoutBase << min(failed-h.o.MaxFailures, 20)
		until = now.Add(min(d, h.o.LockoutMax))
	}
	if err := h.o.Store.RecordLoginFailure(ctx, a.ID, failed, until); err != nil {
		return a, h.internal("login", err)
	}
	h.o.Logger.Info("orgadmin: sign-in failed", "failures", failed, "locked", !until.IsZero())
	if !until.IsZero() {
		return a, errLocked(until, now)
	}
	return a, errLogin
}

// ServiceView is a messenger service as shown to its Org-Admin.
type ServiceView struct {
	Domain    string    `json:"domain"`
	Status    string    `json:"status"`
	Message   string    `json:"message,omitempty"`
	OrderedAt time.Time `json:"ordered_at"`
}

func viewOf(s store.OrgService) ServiceView {
	return ServiceView{Domain: s.Domain, Status: s.Status, Message: s.Message, OrderedAt: s.OrderedAt}
}

func (h *Handler) services(ctx context.Context, a store.OrgAdmin) ([]ServiceView, *Problem) {
	list, err := h.o.Store.OrgServices(ctx, a.TelematikID)
	if err != nil {
		return nil, h.internal("services", err)
	}
	out := make([]ServiceView, 0, len(list))
	for _, s := range list {
		out = append(out, viewOf(s))
	}
	return out, nil
}

// normDomain accepts a DNS name as a Matrix server name without port (the federation list's form).
func normDomain(d string) (string, bool) {
	d = strings.ToLower(strings.TrimSpace(d))
	host, port, err := matrix.ParseServerName(d)
	if err != nil || port != 0 || strings.HasPrefix(host, "[") || !strings.Contains(host, ".") || len(host) > 253 {
		return "", false
	}
	for _, r := range host {
		if r >= 'a' && r <= 'z' {
			return host, true // at least one letter: not an IPv4 address
		}
	}
	return "", false
}

var errNoService = problem(http.StatusNotFound, "Your organisation has no messenger service of that name.")

// orderService records an order; it stays pending until the operator confirms it (A_23521).
// allowed refuses an organisation the organisation check has suspended.
func (h *Handler) allowed(ctx context.Context, telematikID string) *Problem {
	if h.o.Organisations == nil {
		return nil
	}
	err := h.o.Organisations.Allowed(ctx, telematikID)
	switch {
	case err == nil, errors.Is(err, orgcheck.ErrNotFound):
		return nil
	case errors.Is(err, orgcheck.ErrSuspended):
		return problem(http.StatusForbidden, "Your organisation is suspended: "+strings.TrimPrefix(err.Error(), orgcheck.ErrSuspended.Error()+": ")+".")
	default:
		return h.internal("organisation check", err)
	}
}

// reinstate lifts a suspension for inactivity after a sign-in with the SMC-B.
func (h *Handler) reinstate(ctx context.Context, telematikID string) {
	if h.o.Organisations == nil {
		return
	}
	if err := h.o.Organisations.Reinstate(ctx, telematikID); err != nil && !errors.Is(err, orgcheck.ErrNotFound) {
		h.o.Logger.Warn("orgadmin: organisation not reinstated", "error", err.Error())
	}
}

func (h *Handler) orderService(ctx context.Context, a store.OrgAdmin, domain string) (ServiceView, *Problem) {
	if p := h.allowed(ctx, a.TelematikID); p != nil {
		return ServiceView{}, p
	}
	d, ok := normDomain(domain)
	if !ok {
		return ServiceView{}, problem(http.StatusBadRequest, "Please enter a domain name such as messenger.example.de (no port, no IP address).")
	}
	in, err := onboarding.CheckInstitution(a.ProfessionOID)
	if err != nil {
		return ServiceView{}, h.onboardingProblem("order", err)
	}
	list, err := h.o.Store.OrgServices(ctx, a.TelematikID)
	if err != nil {
		return ServiceView{}, h.internal("order", err)
	}
	if len(list) >= h.o.MaxServices {
		return ServiceView{}, problem(http.StatusConflict, fmt.Sprintf("Your organisation has reached the limit of %d messenger services.", h.o.MaxServices))
	}
	s := store.OrgService{Domain: d, TelematikID: a.TelematikID, IsInsurance: in.IsInsurance(), Status: store.ServicePending,
		Message: "Awaiting confirmation by the provider.", OrderedAt: h.o.Now()}
	if err := h.o.Store.CreateOrgService(ctx, s); errors.Is(err, store.ErrExists) {
		return ServiceView{}, problem(http.StatusConflict, "This domain has been ordered already.")
	} else if err != nil {
		return ServiceView{}, h.internal("order", err)
	}
	h.o.Logger.Info("orgadmin: service ordered")
	return viewOf(s), nil
}

func (h *Handler) service(ctx context.Context, a store.OrgAdmin, domain string) (store.OrgService, *Problem) {
	d, ok := normDomain(domain)
	if !ok {
		return store.OrgService{}, errNoService
	}
	s, err := h.o.Store.OrgServiceByDomain(ctx, d)
	if errors.Is(err, store.ErrNotFound) || err == nil && s.TelematikID != a.TelematikID {
		return store.OrgService{}, errNoService // another organisation's service looks like none
	}
	if err != nil {
		return store.OrgService{}, h.internal("service", err)
	}
	return s, nil
}

// deleteService removes an active domain from the federation (DELETE /federation/{domain}) and
// then the service.
func (h *Handler) deleteService(ctx context.Context, a store.OrgAdmin, domain string) *Problem {
	s, p := h.service(ctx, a, domain)
	if p != nil {
		return p
	}
	if s.Status == store.ServiceActive {
		if err := h.o.Federation.DeleteDomain(ctx, s.Domain); err != nil && !errors.Is(err, vzd.ErrNotFound) {
			h.o.Logger.Warn("orgadmin: federation delete failed", "error", err.Error())
			return problem(http.StatusBadGateway, "The directory (VZD) did not remove the domain from the federation; please try again later.")
		}
	}
	if err := h.o.Store.DeleteOrgService(ctx, a.TelematikID, s.Domain); err != nil && !errors.Is(err, store.ErrNotFound) {
		return h.internal("delete service", err)
	}
	h.o.Logger.Info("orgadmin: service deleted")
	return nil
}

// ownUser checks that mxid is a user of one of the organisation's active messenger services.
func (h *Handler) ownUser(ctx context.Context, a store.OrgAdmin, mxid string) (string, *Problem) {
	mxid = strings.TrimSpace(mxid)
	_, server, err := matrix.ParseUserID(mxid)
	if err != nil {
		return "", problem(http.StatusBadRequest, "Please enter a Matrix user ID such as @name:messenger.example.de.")
	}
	host, port, err := matrix.ParseServerName(server)
	if err != nil || port != 0 {
		return "", problem(http.StatusNotFound, "This user does not belong to one of your organisation's messenger services.")
	}
	s, err := h.o.Store.OrgServiceByDomain(ctx, strings.ToLower(host))
	if err != nil || s.TelematikID != a.TelematikID || s.Status != store.ServiceActive {
		return "", problem(http.StatusNotFound, "This user does not belong to one of your organisation's messenger services.")
	}
	return mxid, nil
}

var errNoBlocker = problem(http.StatusServiceUnavailable, "Blocking users is not available on this deployment.")

// userAction blocks, unblocks or ends the sessions of one of the organisation's users.
func (h *Handler) userAction(ctx context.Context, a store.OrgAdmin, action, mxid string) *Problem {
	if h.o.Blocker == nil {
		return errNoBlocker
	}
	mxid, p := h.ownUser(ctx, a, mxid)
	if p != nil {
		return p
	}
	var err error
	switch action {
	case "block":
		if err = h.o.Blocker.Block(ctx, mxid); err == nil {
			err = h.o.Store.PutBlockedUser(ctx, store.BlockedUser{MXID: mxid, TelematikID: a.TelematikID, BlockedAt: h.o.Now()})
		}
	case "unblock":
		if err = h.o.Blocker.Unblock(ctx, mxid); err == nil {
			if err = h.o.Store.DeleteBlockedUser(ctx, a.TelematikID, mxid); errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		}
	case "end-sessions":
		err = h.o.Blocker.EndSessions(ctx, mxid)
	default:
		return problem(http.StatusNotFound, "Unknown action.")
	}
	if err != nil {
		h.o.Logger.Warn("orgadmin: user action failed", "action", action, "error", err.Error())
		return problem(http.StatusBadGateway, "The homeserver did not carry out the action; please try again later.")
	}
	h.o.Logger.Info("orgadmin: user action", "action", action)
	return nil
}

// setUserPassword gives one of the organisation's users a new homeserver password (after an
// unblock or the end of its sessions on Dendrite). A blocked user gets none: on a homeserver
// without a lock the password is the block.
func (h *Handler) setUserPassword(ctx context.Context, a store.OrgAdmin, mxid, password string) *Problem {
	ps, ok := h.o.Blocker.(PasswordSetter)
	if h.o.Blocker == nil || !ok {
		return problem(http.StatusServiceUnavailable, "Setting user passwords is not available on this deployment.")
	}
	mxid, p := h.ownUser(ctx, a, mxid)
	if p != nil {
		return p
	}
	list, err := h.o.Store.BlockedUsers(ctx, a.TelematikID)
	if err != nil {
		return h.internal("set password", err)
	}
	for _, b := range list {
		if b.MXID == mxid {
			return problem(http.StatusConflict, "The user is blocked; unblock the user first.")
		}
	}
	local, _, _ := strings.Cut(strings.TrimPrefix(mxid, "@"), ":")
	if probs := PasswordProblems(password, local, a.TelematikID); len(probs) > 0 {
		return problem(http.StatusBadRequest, "The password does not meet the password rules.", probs...)
	}
	if err := ps.SetPassword(ctx, mxid, password); err != nil {
		h.o.Logger.Warn("orgadmin: user password not set", "error", err.Error())
		return problem(http.StatusBadGateway, "The homeserver did not set the password; please try again later.")
	}
	h.o.Logger.Info("orgadmin: user password set")
	return nil
}

// BlockedView is a blocked user as listed to the Org-Admin.
type BlockedView struct {
	MXID      string    `json:"mxid"`
	BlockedAt time.Time `json:"blocked_at"`
}

func (h *Handler) blocked(ctx context.Context, a store.OrgAdmin) ([]BlockedView, *Problem) {
	list, err := h.o.Store.BlockedUsers(ctx, a.TelematikID)
	if err != nil {
		return nil, h.internal("blocked", err)
	}
	out := make([]BlockedView, 0, len(list))
	for _, b := range list {
		out = append(out, BlockedView{MXID: b.MXID, BlockedAt: b.BlockedAt})
	}
	return out, nil
}

// issueToken asks the token issuer for a RegService OpenID token of the organisation.
func (h *Handler) issueToken(ctx context.Context, a store.OrgAdmin) (string, *Problem) {
	if h.o.Tokens == nil {
		return "", problem(http.StatusServiceUnavailable, "Issuing RegService OpenID tokens is not available on this deployment.")
	}
	if p := h.allowed(ctx, a.TelematikID); p != nil {
		return "", p
	}
	tok, err := h.o.Tokens.IssueToken(ctx, a.ProfessionOID, a.TelematikID)
	if err != nil {
		h.o.Logger.Warn("orgadmin: token issue failed", "error", err.Error())
		return "", problem(http.StatusBadGateway, "The token could not be issued; please try again later.")
	}
	h.o.Logger.Info("orgadmin: token issued")
	return tok, nil
}
