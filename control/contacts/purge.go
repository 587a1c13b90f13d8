package contacts

import (
	"context"
	"log/slog"
	"time"
)

// Purger deletes release-list entries whose window has ended; *store.Store implements it.
type Purger interface {
	PurgeExpired(ctx context.Context, t time.Time) (int64, error)
}

// RunPurge deletes expired entries every interval until ctx ends. Expired entries are already
// ignored by the invite check; the purge only keeps the lists and the table small. With several
// replicas each purges, which is harmless: the statement is idempotent.
func RunPurge(ctx context.Context, p Purger, interval time.Duration, now func() time.Time, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := p.PurgeExpired(ctx, now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("contact purge failed", "error", err.Error())
		case n > 0:
			log.Info("expired contact settings purged", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
