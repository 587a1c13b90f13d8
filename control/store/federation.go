package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FederationList is the last good federation list as the VZD delivered it.
type FederationList struct {
	JWS       string    // compact JWS, unchanged
	Version   int64     // version from the payload
	FetchedAt time.Time // when the VZD last confirmed it (fetch or "not modified")
}

// FederationListStore keeps the last good federation list across restarts and shares it between
// replicas. *Store implements it.
type FederationListStore interface {
	SaveFederationList(ctx context.Context, l FederationList) error
	// LoadFederationList returns ErrNotFound when no list was ever saved.
	LoadFederationList(ctx context.Context) (FederationList, error)
}

var _ FederationListStore = (*Store)(nil)

// SaveFederationList replaces the stored list. A list older than the stored one is refused with an
// error so that a replica holding a stale copy cannot roll the shared state back; the same version
// only refreshes FetchedAt (and the JWS). Read and write share one transaction.
func (s *Store) SaveFederationList(ctx context.Context, l FederationList) error {
	if l.JWS == "" {
		return errors.New("store: empty federation list")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var current int64
		err := tx.QueryRowContext(ctx, "SELECT version FROM federation_list WHERE id = 1").Scan(&current)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("store: save federation list: %w", err)
		case l.Version < current:
			return fmt.Errorf("store: federation list version %d is older than the stored version %d", l.Version, current)
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO federation_list (id, jws, version, fetched_at_ms) VALUES (1, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET jws = excluded.jws, version = excluded.version, fetched_at_ms = excluded.fetched_at_ms`),
			l.JWS, l.Version, l.FetchedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: save federation list: %w", err)
		}
		return nil
	})
}

// LoadFederationList returns the stored list or ErrNotFound.
func (s *Store) LoadFederationList(ctx context.Context) (FederationList, error) {
	var (
		l  FederationList
		ms int64
	)
	err := s.db.QueryRowContext(ctx, "SELECT jws, version, fetched_at_ms FROM federation_list WHERE id = 1").Scan(&l.JWS, &l.Version, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return FederationList{}, ErrNotFound
	}
	if err != nil {
		return FederationList{}, fmt.Errorf("store: load federation list: %w", err)
	}
	l.FetchedAt = time.UnixMilli(ms).UTC()
	return l, nil
}
