package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Contact is one entry of an owner's release list: Contact may invite Owner from Start until End
// (exclusive; zero End = no end). Times are whole seconds as in I_TiMessengerContactManagement.
type Contact struct {
	Owner       string
	Contact     string
	DisplayName string
	Start       time.Time
	End         time.Time
}

// ActiveAt reports whether the entry grants invites at t.
func (c Contact) ActiveAt(t time.Time) bool {
	return !t.Before(c.Start) && (c.End.IsZero() || t.Before(c.End))
}

func endArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func scanContact(sc interface{ Scan(...any) error }) (Contact, error) {
	var (
		c     Contact
		start int64
		end   sql.NullInt64
	)
	if err := sc.Scan(&c.Owner, &c.Contact, &c.DisplayName, &start, &end); err != nil {
		return Contact{}, err
	}
	c.Start = time.Unix(start, 0).UTC()
	if end.Valid {
		c.End = time.Unix(end.Int64, 0).UTC()
	}
	return c, nil
}

const contactColumns = "owner, contact, display_name, start_at, end_at"

// ListContacts returns the owner's entries ordered by contact MXID, at most limit of them.
func (s *Store) ListContacts(ctx context.Context, owner string, limit int) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+contactColumns+" FROM contacts WHERE owner = ? ORDER BY contact LIMIT ?"), owner, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list contacts: %w", err)
	}
	defer rows.Close()
	out := []Contact{}
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list contacts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// GetContact returns the owner's entry for contact, or ErrNotFound.
func (s *Store) GetContact(ctx context.Context, owner, contact string) (Contact, error) {
	row := s.db.QueryRowContext(ctx, s.q("SELECT "+contactColumns+" FROM contacts WHERE owner = ? AND contact = ?"), owner, contact)
	c, err := scanContact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, ErrNotFound
	}
	if err != nil {
		return Contact{}, fmt.Errorf("store: get contact: %w", err)
	}
	return c, nil
}

// CreateContact adds an entry; ErrExists when the owner already has one for that contact, ErrLimit
// when the owner already holds maxPerOwner entries. Count and insert run in one transaction.
func (s *Store) CreateContact(ctx context.Context, c Contact, maxPerOwner int) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM contacts WHERE owner = ?"), c.Owner).Scan(&n); err != nil {
			return fmt.Errorf("store: create contact: %w", err)
		}
		if n >= maxPerOwner {
			return ErrLimit
		}
		res, err := tx.ExecContext(ctx, s.q("INSERT INTO contacts ("+contactColumns+") VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, contact) DO NOTHING"),
			c.Owner, c.Contact, c.DisplayName, c.Start.Unix(), endArg(c.End))
		if err != nil {
			return fmt.Errorf("store: create contact: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrExists
		}
		return nil
	})
}

// UpdateContact replaces display name and window of an existing entry, or returns ErrNotFound.
func (s *Store) UpdateContact(ctx context.Context, c Contact) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE contacts SET display_name = ?, start_at = ?, end_at = ? WHERE owner = ? AND contact = ?"),
		c.DisplayName, c.Start.Unix(), endArg(c.End), c.Owner, c.Contact)
	if err != nil {
		return fmt.Errorf("store: update contact: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteContact removes the owner's entry for contact, or returns ErrNotFound.
func (s *Store) DeleteContact(ctx context.Context, owner, contact string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM contacts WHERE owner = ? AND contact = ?"), owner, contact)
	if err != nil {
		return fmt.Errorf("store: delete contact: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// IsReleased reports whether owner's release list lets contact invite at t. Expired entries count
// as absent even before PurgeExpired removed them.
func (s *Store) IsReleased(ctx context.Context, owner, contact string, t time.Time) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.q("SELECT 1 FROM contacts WHERE owner = ? AND contact = ? AND start_at <= ? AND (end_at IS NULL OR end_at > ?)"),
		owner, contact, t.Unix(), t.Unix()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: release check: %w", err)
	}
	return true, nil
}

// PurgeExpired deletes every entry whose window ended at or before t and reports how many.
func (s *Store) PurgeExpired(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM contacts WHERE end_at IS NOT NULL AND end_at <= ?"), t.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: purge: %w", err)
	}
	return res.RowsAffected()
}
