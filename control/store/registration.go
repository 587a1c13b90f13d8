package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrUsed: a single-use item (KIM link, TOTP step) was used before.
var ErrUsed = errors.New("store: already used")

// OrgAdmin is an organisation's administrator account; one per Telematik-ID.
type OrgAdmin struct {
	ID            string
	TelematikID   string
	ProfessionOID string
	OrgName       string
	AuthMethod    string // "oidc" or "kim": how the organisation was authenticated
	Username      string
	PasswordHash  string
	TOTPSecret    string
	TOTPLastStep  int64 // last accepted RFC 6238 time step; a step is accepted once
	FailedLogins  int
	LockedUntil   time.Time
	CreatedAt     time.Time
}

// OrgSession is a logged-in Org-Admin; TokenHash is the SHA-256 of the session secret.
type OrgSession struct {
	TokenHash string
	AdminID   string
	CSRF      string
	ExpiresAt time.Time
}

// OIDCPending is an authorisation request sent to the IDP and not yet answered.
type OIDCPending struct {
	State, Nonce, Verifier, BrowserHash, Purpose string
	ExpiresAt                                    time.Time
}

// KIMChallenge is an authentication mail sent to a KIM address.
type KIMChallenge struct {
	ID            string
	CodeHash      string
	TelematikID   string
	ProfessionOID string
	OrgName       string
	Attempts      int
	Used          bool
	ExpiresAt     time.Time
}

// OnboardingTicket is an authenticated organisation that has not yet completed its account.
type OnboardingTicket struct {
	TokenHash     string
	TelematikID   string
	ProfessionOID string
	OrgName       string
	AuthMethod    string
	Username      string
	PasswordHash  string
	TOTPSecret    string
	ExpiresAt     time.Time
}

// Service status values.
const (
	ServicePending  = "pending"
	ServiceActive   = "active"
	ServiceRejected = "rejected"
)

// OrgService is a Matrix domain ordered by an organisation.
type OrgService struct {
	Domain      string
	TelematikID string
	IsInsurance bool
	Status      string
	Message     string
	OrderedAt   time.Time
	DecidedAt   time.Time
}

// BlockedUser is a user an Org-Admin blocked.
type BlockedUser struct {
	MXID        string
	TelematikID string
	BlockedAt   time.Time
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func affected(res sql.Result, err error, none error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return none
	}
	return nil
}

const adminColumns = "id, telematik_id, profession_oid, org_name, auth_method, username, password_hash, totp_secret, totp_last_step, failed_logins, locked_until, created_at"

// CreateOrgAdmin inserts the account; ErrExists when the organisation already has one or the
// username is taken. Nothing of an existing account changes.
func (s *Store) CreateOrgAdmin(ctx context.Context, a OrgAdmin) error {
	res, err := s.db.ExecContext(ctx, s.q("INSERT INTO org_admins ("+adminColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
		a.ID, a.TelematikID, a.ProfessionOID, a.OrgName, a.AuthMethod, a.Username, a.PasswordHash, a.TOTPSecret, a.TOTPLastStep, a.FailedLogins, ms(a.LockedUntil), ms(a.CreatedAt))
	if err := affected(res, err, ErrExists); err != nil {
		if errors.Is(err, ErrExists) {
			return err
		}
		return fmt.Errorf("store: create org admin: %w", err)
	}
	return nil
}

func (s *Store) orgAdminBy(ctx context.Context, column, value string) (OrgAdmin, error) {
	var a OrgAdmin
	var locked, created int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT "+adminColumns+" FROM org_admins WHERE "+column+" = ?"), value).Scan(
		&a.ID, &a.TelematikID, &a.ProfessionOID, &a.OrgName, &a.AuthMethod, &a.Username, &a.PasswordHash, &a.TOTPSecret, &a.TOTPLastStep, &a.FailedLogins, &locked, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return OrgAdmin{}, ErrNotFound
	}
	if err != nil {
		return OrgAdmin{}, fmt.Errorf("store: org admin: %w", err)
	}
	a.LockedUntil, a.CreatedAt = fromMS(locked), fromMS(created)
	return a, nil
}

// OrgAdminByID, OrgAdminByUsername and OrgAdminByTelematikID return ErrNotFound when there is none.
func (s *Store) OrgAdminByID(ctx context.Context, id string) (OrgAdmin, error) {
	return s.orgAdminBy(ctx, "id", id)
}

func (s *Store) OrgAdminByUsername(ctx context.Context, username string) (OrgAdmin, error) {
	return s.orgAdminBy(ctx, "username", username)
}

func (s *Store) OrgAdminByTelematikID(ctx context.Context, telematikID string) (OrgAdmin, error) {
	return s.orgAdminBy(ctx, "telematik_id", telematikID)
}

// RecordLoginFailure stores the failure count and the lockout end.
func (s *Store) RecordLoginFailure(ctx context.Context, id string, failed int, lockedUntil time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE org_admins SET failed_logins = ?, locked_until = ? WHERE id = ?"), failed, ms(lockedUntil), id)
	return err
}

// RecordLoginSuccess clears the failures and takes the TOTP step; ErrUsed when that step (or a
// later one) was accepted before, so a code is never accepted twice.
func (s *Store) RecordLoginSuccess(ctx context.Context, id string, totpStep int64) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE org_admins SET failed_logins = 0, locked_until = 0, totp_last_step = ? WHERE id = ? AND totp_last_step < ?"), totpStep, id, totpStep)
	return affected(res, err, ErrUsed)
}

// CreateOrgSession stores a session.
func (s *Store) CreateOrgSession(ctx context.Context, x OrgSession) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO orgadmin_sessions (token_hash, admin_id, csrf_token, expires_at) VALUES (?, ?, ?, ?)"),
		x.TokenHash, x.AdminID, x.CSRF, ms(x.ExpiresAt))
	return err
}

// OrgSessionByHash returns a session that has not expired at now, else ErrNotFound.
func (s *Store) OrgSessionByHash(ctx context.Context, hash string, now time.Time) (OrgSession, error) {
	var x OrgSession
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT token_hash, admin_id, csrf_token, expires_at FROM orgadmin_sessions WHERE token_hash = ? AND expires_at > ?"), hash, ms(now)).
		Scan(&x.TokenHash, &x.AdminID, &x.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return OrgSession{}, ErrNotFound
	}
	if err != nil {
		return OrgSession{}, fmt.Errorf("store: session: %w", err)
	}
	x.ExpiresAt = fromMS(exp)
	return x, nil
}

// DeleteOrgSession ends a session (logout).
func (s *Store) DeleteOrgSession(ctx context.Context, hash string) error {
	_, err := s.db.ExecContext(ctx, s.q("DELETE FROM orgadmin_sessions WHERE token_hash = ?"), hash)
	return err
}

// PutOIDCPending stores an authorisation request.
func (s *Store) PutOIDCPending(ctx context.Context, p OIDCPending) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO oidc_pending (state, nonce, verifier, browser_hash, purpose, expires_at) VALUES (?, ?, ?, ?, ?, ?)"),
		p.State, p.Nonce, p.Verifier, p.BrowserHash, p.Purpose, ms(p.ExpiresAt))
	return err
}

// TakeOIDCPending removes and returns the request for state; ErrNotFound when there is none (never
// issued, already answered, or expired at now).
func (s *Store) TakeOIDCPending(ctx context.Context, state string, now time.Time) (OIDCPending, error) {
	var p OIDCPending
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q("DELETE FROM oidc_pending WHERE state = ? RETURNING state, nonce, verifier, browser_hash, purpose, expires_at"), state).
		Scan(&p.State, &p.Nonce, &p.Verifier, &p.BrowserHash, &p.Purpose, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return OIDCPending{}, ErrNotFound
	}
	if err != nil {
		return OIDCPending{}, fmt.Errorf("store: oidc pending: %w", err)
	}
	p.ExpiresAt = fromMS(exp)
	if !p.ExpiresAt.After(now) {
		return OIDCPending{}, ErrNotFound
	}
	return p, nil
}

// PutKIMChallenge stores a sent authentication mail.
func (s *Store) PutKIMChallenge(ctx context.Context, c KIMChallenge) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO kim_challenges (id, code_hash, telematik_id, profession_oid, org_name, attempts, used, expires_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?)"),
		c.ID, c.CodeHash, c.TelematikID, c.ProfessionOID, c.OrgName, ms(c.ExpiresAt))
	return err
}

// GetKIMChallenge returns the challenge or ErrNotFound.
func (s *Store) GetKIMChallenge(ctx context.Context, id string) (KIMChallenge, error) {
	var c KIMChallenge
	var used int
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT id, code_hash, telematik_id, profession_oid, org_name, attempts, used, expires_at FROM kim_challenges WHERE id = ?"), id).
		Scan(&c.ID, &c.CodeHash, &c.TelematikID, &c.ProfessionOID, &c.OrgName, &c.Attempts, &used, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return KIMChallenge{}, ErrNotFound
	}
	if err != nil {
		return KIMChallenge{}, fmt.Errorf("store: kim challenge: %w", err)
	}
	c.Used, c.ExpiresAt = used != 0, fromMS(exp)
	return c, nil
}

// CountKIMAttempt takes one code attempt; ErrLimit when max attempts were already made.
func (s *Store) CountKIMAttempt(ctx context.Context, id string, max int) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE kim_challenges SET attempts = attempts + 1 WHERE id = ? AND attempts < ?"), id, max)
	return affected(res, err, ErrLimit)
}

// UseKIMChallenge marks the challenge used; ErrUsed when it was used before.
func (s *Store) UseKIMChallenge(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE kim_challenges SET used = 1 WHERE id = ? AND used = 0"), id)
	return affected(res, err, ErrUsed)
}

const ticketColumns = "token_hash, telematik_id, profession_oid, org_name, auth_method, username, password_hash, totp_secret, expires_at"

// PutOnboardingTicket stores a ticket.
func (s *Store) PutOnboardingTicket(ctx context.Context, t OnboardingTicket) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO onboarding_tickets ("+ticketColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		t.TokenHash, t.TelematikID, t.ProfessionOID, t.OrgName, t.AuthMethod, t.Username, t.PasswordHash, t.TOTPSecret, ms(t.ExpiresAt))
	return err
}

// OnboardingTicketByHash returns a ticket that has not expired at now, else ErrNotFound.
func (s *Store) OnboardingTicketByHash(ctx context.Context, hash string, now time.Time) (OnboardingTicket, error) {
	var t OnboardingTicket
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT "+ticketColumns+" FROM onboarding_tickets WHERE token_hash = ? AND expires_at > ?"), hash, ms(now)).
		Scan(&t.TokenHash, &t.TelematikID, &t.ProfessionOID, &t.OrgName, &t.AuthMethod, &t.Username, &t.PasswordHash, &t.TOTPSecret, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return OnboardingTicket{}, ErrNotFound
	}
	if err != nil {
		return OnboardingTicket{}, fmt.Errorf("store: onboarding ticket: %w", err)
	}
	t.ExpiresAt = fromMS(exp)
	return t, nil
}

// SetTicketCredentials stores the chosen username, password hash and TOTP secret on a ticket.
func (s *Store) SetTicketCredentials(ctx context.Context, hash, username, passwordHash, totpSecret string) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE onboarding_tickets SET username = ?, password_hash = ?, totp_secret = ? WHERE token_hash = ?"), username, passwordHash, totpSecret, hash)
	return affected(res, err, ErrNotFound)
}

// DeleteOnboardingTicket removes a ticket; ErrNotFound when it is gone already.
func (s *Store) DeleteOnboardingTicket(ctx context.Context, hash string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM onboarding_tickets WHERE token_hash = ?"), hash)
	return affected(res, err, ErrNotFound)
}

const serviceColumns = "domain, telematik_id, is_insurance, status, message, ordered_at, decided_at"

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateOrgService records an order; ErrExists when the domain was ordered before (by anyone).
func (s *Store) CreateOrgService(ctx context.Context, x OrgService) error {
	res, err := s.db.ExecContext(ctx, s.q("INSERT INTO org_services ("+serviceColumns+") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain) DO NOTHING"),
		x.Domain, x.TelematikID, boolInt(x.IsInsurance), x.Status, x.Message, ms(x.OrderedAt), ms(x.DecidedAt))
	return affected(res, err, ErrExists)
}

func scanServices(rows *sql.Rows) ([]OrgService, error) {
	defer rows.Close()
	var out []OrgService
	for rows.Next() {
		var x OrgService
		var ins int
		var ordered, decided int64
		if err := rows.Scan(&x.Domain, &x.TelematikID, &ins, &x.Status, &x.Message, &ordered, &decided); err != nil {
			return nil, err
		}
		x.IsInsurance, x.OrderedAt, x.DecidedAt = ins != 0, fromMS(ordered), fromMS(decided)
		out = append(out, x)
	}
	return out, rows.Err()
}

// OrgServices lists an organisation's services by domain.
func (s *Store) OrgServices(ctx context.Context, telematikID string) ([]OrgService, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+serviceColumns+" FROM org_services WHERE telematik_id = ? ORDER BY domain"), telematikID)
	if err != nil {
		return nil, fmt.Errorf("store: org services: %w", err)
	}
	return scanServices(rows)
}

// OrgServicesByStatus lists every organisation's services in one status (the operator's view).
func (s *Store) OrgServicesByStatus(ctx context.Context, status string, limit int) ([]OrgService, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+serviceColumns+" FROM org_services WHERE status = ? ORDER BY ordered_at, domain LIMIT ?"), status, limit)
	if err != nil {
		return nil, fmt.Errorf("store: org services: %w", err)
	}
	return scanServices(rows)
}

// OrgServiceByDomain returns the service or ErrNotFound.
func (s *Store) OrgServiceByDomain(ctx context.Context, domain string) (OrgService, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+serviceColumns+" FROM org_services WHERE domain = ?"), domain)
	if err != nil {
		return OrgService{}, fmt.Errorf("store: org service: %w", err)
	}
	list, err := scanServices(rows)
	if err != nil {
		return OrgService{}, err
	}
	if len(list) == 0 {
		return OrgService{}, ErrNotFound
	}
	return list[0], nil
}

// SetOrgServiceStatus moves a service from status `from` to `to`; ErrNotFound when the service is
// not in `from` (decided meanwhile, or deleted).
func (s *Store) SetOrgServiceStatus(ctx context.Context, domain, from, to, message string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE org_services SET status = ?, message = ?, decided_at = ? WHERE domain = ? AND status = ?"), to, message, ms(at), domain, from)
	return affected(res, err, ErrNotFound)
}

// SetOrgServiceMessage records the last outcome of a step without changing the status.
func (s *Store) SetOrgServiceMessage(ctx context.Context, domain, message string) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE org_services SET message = ? WHERE domain = ?"), message, domain)
	return err
}

// DeleteOrgService removes an organisation's service; ErrNotFound when it has none of that name.
func (s *Store) DeleteOrgService(ctx context.Context, telematikID, domain string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM org_services WHERE domain = ? AND telematik_id = ?"), domain, telematikID)
	return affected(res, err, ErrNotFound)
}

// PutBlockedUser records a block (again: the first time is kept).
func (s *Store) PutBlockedUser(ctx context.Context, b BlockedUser) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO blocked_users (mxid, telematik_id, blocked_at) VALUES (?, ?, ?) ON CONFLICT (mxid) DO NOTHING"), b.MXID, b.TelematikID, ms(b.BlockedAt))
	return err
}

// DeleteBlockedUser removes a block; ErrNotFound when the organisation holds none for mxid.
func (s *Store) DeleteBlockedUser(ctx context.Context, telematikID, mxid string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM blocked_users WHERE mxid = ? AND telematik_id = ?"), mxid, telematikID)
	return affected(res, err, ErrNotFound)
}

// BlockedUsers lists an organisation's blocked users.
func (s *Store) BlockedUsers(ctx context.Context, telematikID string) ([]BlockedUser, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT mxid, telematik_id, blocked_at FROM blocked_users WHERE telematik_id = ? ORDER BY mxid"), telematikID)
	if err != nil {
		return nil, fmt.Errorf("store: blocked users: %w", err)
	}
	defer rows.Close()
	var out []BlockedUser
	for rows.Next() {
		var b BlockedUser
		var at int64
		if err := rows.Scan(&b.MXID, &b.TelematikID, &at); err != nil {
			return nil, err
		}
		b.BlockedAt = fromMS(at)
		out = append(out, b)
	}
	return out, rows.Err()
}

// PurgeRegistration deletes expired sessions, authorisation requests, KIM challenges and tickets.
func (s *Store) PurgeRegistration(ctx context.Context, now time.Time) error {
	for _, table := range []string{"orgadmin_sessions", "oidc_pending", "kim_challenges", "onboarding_tickets"} {
		if _, err := s.db.ExecContext(ctx, s.q("DELETE FROM "+table+" WHERE expires_at <= ?"), ms(now)); err != nil {
			return fmt.Errorf("store: purge %s: %w", table, err)
		}
	}
	return nil
}

// OpenKIMChallenges counts the unused, unexpired challenges of an organisation.
func (s *Store) OpenKIMChallenges(ctx context.Context, telematikID string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM kim_challenges WHERE telematik_id = ? AND used = 0 AND expires_at > ?"), telematikID, ms(now)).Scan(&n)
	return n, err
}

// OpenOIDCRequests counts the unanswered, unexpired authorisation requests.
func (s *Store) OpenOIDCRequests(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM oidc_pending WHERE expires_at > ?"), ms(now)).Scan(&n)
	return n, err
}
