package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OrgCheck is an organisation as the organisation check sees it: its active services' domains and
// the check's state (org_checks; zero values while it is active and never found inactive).
type OrgCheck struct {
	TelematikID   string
	Domains       []string
	InactiveSince time.Time
	Notified      bool
	Suspended     string // "", "inactive" or "decommissioned"
	SuspendedAt   time.Time
}

// OrgChecks lists every organisation with an Org-Admin, by Telematik-ID.
func (s *Store) OrgChecks(ctx context.Context) ([]OrgCheck, error) {
	return s.orgChecks(ctx, "")
}

// OrgCheckByTelematikID returns one organisation; ErrNotFound when it has no Org-Admin.
func (s *Store) OrgCheckByTelematikID(ctx context.Context, telematikID string) (OrgCheck, error) {
	list, err := s.orgChecks(ctx, telematikID)
	if err != nil {
		return OrgCheck{}, err
	}
	if len(list) == 0 {
		return OrgCheck{}, ErrNotFound
	}
	return list[0], nil
}

func (s *Store) orgChecks(ctx context.Context, telematikID string) ([]OrgCheck, error) {
	query := `SELECT a.telematik_id, COALESCE(c.inactive_since, 0), COALESCE(c.notified, 0), COALESCE(c.suspended, ''), COALESCE(c.suspended_at, 0)
		FROM org_admins a LEFT JOIN org_checks c ON c.telematik_id = a.telematik_id`
	args := []any{}
	if telematikID != "" {
		query += " WHERE a.telematik_id = ?"
		args = append(args, telematikID)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY a.telematik_id"), args...)
	if err != nil {
		return nil, fmt.Errorf("store: org checks: %w", err)
	}
	var out []OrgCheck
	index := map[string]int{}
	for rows.Next() {
		var o OrgCheck
		var since, at int64
		var notified int
		if err := rows.Scan(&o.TelematikID, &since, &notified, &o.Suspended, &at); err != nil {
			rows.Close()
			return nil, err
		}
		o.InactiveSince, o.Notified, o.SuspendedAt = fromMS(since), notified != 0, fromMS(at)
		index[o.TelematikID] = len(out)
		out = append(out, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	query, args = "SELECT telematik_id, domain FROM org_services WHERE status = ?", []any{ServiceActive}
	if telematikID != "" {
		query += " AND telematik_id = ?"
		args = append(args, telematikID)
	}
	rows, err = s.db.QueryContext(ctx, s.q(query+" ORDER BY domain"), args...)
	if err != nil {
		return nil, fmt.Errorf("store: org check domains: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tid, domain string
		if err := rows.Scan(&tid, &domain); err != nil {
			return nil, err
		}
		if i, ok := index[tid]; ok {
			out[i].Domains = append(out[i].Domains, domain)
		}
	}
	return out, rows.Err()
}

// SetOrgCheck replaces the check's state of an organisation.
func (s *Store) SetOrgCheck(ctx context.Context, o OrgCheck) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO org_checks (telematik_id, inactive_since, notified, suspended, suspended_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (telematik_id) DO UPDATE SET inactive_since = excluded.inactive_since, notified = excluded.notified,
		suspended = excluded.suspended, suspended_at = excluded.suspended_at`),
		o.TelematikID, ms(o.InactiveSince), boolInt(o.Notified), o.Suspended, ms(o.SuspendedAt))
	return err
}

// AllBlockedUsers lists the MXIDs of every organisation's blocked users (the proxies' set).
func (s *Store) AllBlockedUsers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT mxid FROM blocked_users ORDER BY mxid"))
	if err != nil {
		return nil, fmt.Errorf("store: blocked users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetUserBlocked records or lifts a block by MXID. A new block is filed under the organisation whose
// service the user's server name is (the Org-Admin may only block those; empty when none is).
func (s *Store) SetUserBlocked(ctx context.Context, mxid string, blocked bool, at time.Time) error {
	if !blocked {
		_, err := s.db.ExecContext(ctx, s.q("DELETE FROM blocked_users WHERE mxid = ?"), mxid)
		return err
	}
	owner := ""
	if i := strings.IndexByte(mxid, ':'); i > 0 {
		if svc, err := s.OrgServiceByDomain(ctx, strings.ToLower(mxid[i+1:])); err == nil {
			owner = svc.TelematikID
		}
	}
	return s.PutBlockedUser(ctx, BlockedUser{MXID: mxid, TelematikID: owner, BlockedAt: at})
}
