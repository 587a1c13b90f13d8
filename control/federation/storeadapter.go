package federation

import (
	"context"
	"errors"
	"time"

	"github.com/timfd/fachdienst/control/store"
)

// FromStore adapts the control plane's database (control/store) to Store.
func FromStore(s store.FederationListStore) Store { return dbStore{s} }

type dbStore struct{ s store.FederationListStore }

func (d dbStore) Save(ctx context.Context, jws []byte, version int64, fetchedAt time.Time) error {
	return d.s.SaveFederationList(ctx, store.FederationList{JWS: string(jws), Version: version, FetchedAt: fetchedAt})
}

func (d dbStore) Load(ctx context.Context) ([]byte, int64, time.Time, error) {
	l, err := d.s.LoadFederationList(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, time.Time{}, nil
	}
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return []byte(l.JWS), l.Version, l.FetchedAt, nil
}
