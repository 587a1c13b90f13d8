// Package userblock lets an Org-Admin block a user of its organisation, end the user's sessions, and
// unblock the user (gemSpec_TI-Messenger-FD A_23613: from that moment no message to or from the user is
// forwarded).
//
// Two layers do it:
//
//   - the homeserver's admin API (Synapse or Dendrite, see Synapse and Dendrite in this package), which
//     ends the user's sessions at once and keeps the user from using the homeserver while blocked;
//   - the messenger proxies, which receive the set of blocked users as policy data (PolicyData) and refuse
//     what the homeserver would still let through: federation traffic for the user, invites to the user,
//     and, on Dendrite, whatever a blocked user could still do after a later password reset.
//
// Block records the user first and tells the proxies (OnChange) before it calls the homeserver, so that
// a failing homeserver call leaves the user blocked at the proxies rather than not at all.
package userblock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/timfd/fachdienst/control/redact"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Homeserver is the admin API of the homeserver.
type Homeserver interface {
	// Lock ends every session of the user and keeps the user from using the homeserver.
	Lock(ctx context.Context, mxid string) error
	// Unlock undoes Lock.
	Unlock(ctx context.Context, mxid string) error
	// EndSessions invalidates every access token of the user.
	EndSessions(ctx context.Context, mxid string) error
	// SetPassword gives the user a new login password, keeping sessions.
	SetPassword(ctx context.Context, mxid, password string) error
}

// Store keeps the blocked users.
type Store interface {
	BlockedUsers(ctx context.Context) ([]string, error)
	SetBlocked(ctx context.Context, mxid string, blocked bool) error
}

// ErrNotLocal refuses a user of another homeserver: an Org-Admin blocks only its own users.
var ErrNotLocal = errors.New("userblock: not a user of this homeserver")

// ErrBadUser refuses something that is not an MXID.
var ErrBadUser = errors.New("userblock: not a valid MXID")

// Options configure a Blocker.
type Options struct {
	Homeserver Homeserver
	Store      Store
	// ServerNames are the homeserver's server names; users of other servers are refused.
	ServerNames []string
	// OnChange is called after the blocked set changed, to recompile and distribute the policy data.
	OnChange func(ctx context.Context)
	Logger   *slog.Logger
}

// Blocker blocks and unblocks users. It is safe for concurrent use.
type Blocker struct {
	o       Options
	servers map[string]bool

	mu      sync.RWMutex
	blocked map[string]bool
}

// New loads the blocked set from the store.
func New(ctx context.Context, o Options) (*Blocker, error) {
	if o.Homeserver == nil || o.Store == nil || len(o.ServerNames) == 0 {
		return nil, errors.New("userblock: homeserver, store and server names are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "userblock")
	b := &Blocker{o: o, servers: map[string]bool{}, blocked: map[string]bool{}}
	for _, s := range o.ServerNames {
		b.servers[strings.ToLower(s)] = true
	}
	users, err := o.Store.BlockedUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("userblock: loading blocked users: %w", err)
	}
	for _, u := range users {
		b.blocked[u] = true
	}
	return b, nil
}

func (b *Blocker) check(mxid string) error {
	_, server, err := matrix.ParseUserID(mxid)
	if err != nil {
		return ErrBadUser
	}
	if !b.servers[strings.ToLower(server)] {
		return ErrNotLocal
	}
	return nil
}

// Block blocks the user: recorded and handed to the proxies first, then locked at the homeserver,
// which ends the user's sessions.
func (b *Blocker) Block(ctx context.Context, mxid string) error {
	if err := b.check(mxid); err != nil {
		return err
	}
	if err := b.set(ctx, mxid, true); err != nil {
		return err
	}
	if err := b.o.Homeserver.Lock(ctx, mxid); err != nil {
		if errors.Is(err, ErrUnknownUser) {
			// Nothing to block; keep the set to real users.
			if rerr := b.set(ctx, mxid, false); rerr != nil {
				return rerr
			}
			return err
		}
		b.o.Logger.Error("homeserver did not lock a blocked user; the proxies block the user", "user", redact.ID(mxid), "error", err.Error())
		return fmt.Errorf("userblock: the proxies block the user, the homeserver refused: %w", err)
	}
	b.o.Logger.Info("user blocked", "user", redact.ID(mxid))
	return nil
}

// Unblock lifts a block: unlocked at the homeserver first, then removed from the proxies' set.
func (b *Blocker) Unblock(ctx context.Context, mxid string) error {
	if err := b.check(mxid); err != nil {
		return err
	}
	if err := b.o.Homeserver.Unlock(ctx, mxid); err != nil {
		return fmt.Errorf("userblock: the homeserver did not unlock the user; still blocked: %w", err)
	}
	if err := b.set(ctx, mxid, false); err != nil {
		return err
	}
	b.o.Logger.Info("user unblocked", "user", redact.ID(mxid))
	return nil
}

// EndSessions logs the user out of every device; the user may log in again.
func (b *Blocker) EndSessions(ctx context.Context, mxid string) error {
	if err := b.check(mxid); err != nil {
		return err
	}
	if err := b.o.Homeserver.EndSessions(ctx, mxid); err != nil {
		return fmt.Errorf("userblock: ending the sessions failed: %w", err)
	}
	b.o.Logger.Info("user sessions ended", "user", redact.ID(mxid))
	return nil
}

// SetPassword gives a user of the homeserver a new login password, e.g. after Unblock on Dendrite,
// whose blocking replaced it. The caller checks the password's quality (A_23611). A blocked user keeps
// being refused by the proxies and, on Synapse, by the lock.
func (b *Blocker) SetPassword(ctx context.Context, mxid, password string) error {
	if err := b.check(mxid); err != nil {
		return err
	}
	if password == "" {
		return errors.New("userblock: empty password")
	}
	if err := b.o.Homeserver.SetPassword(ctx, mxid, password); err != nil {
		return fmt.Errorf("userblock: setting the password failed: %w", err)
	}
	b.o.Logger.Info("user password set", "user", redact.ID(mxid))
	return nil
}

func (b *Blocker) set(ctx context.Context, mxid string, blocked bool) error {
	b.mu.Lock()
	if b.blocked[mxid] == blocked {
		b.mu.Unlock()
		return nil
	}
	if err := b.o.Store.SetBlocked(ctx, mxid, blocked); err != nil {
		b.mu.Unlock()
		return fmt.Errorf("userblock: storing: %w", err)
	}
	if blocked {
		b.blocked[mxid] = true
	} else {
		delete(b.blocked, mxid)
	}
	b.mu.Unlock()
	if b.o.OnChange != nil {
		b.o.OnChange(ctx)
	}
	return nil
}

// Sync re-reads the blocked set from the store and calls OnChange when it differs from the one held:
// control-plane replicas sharing a database learn of each other's blocks this way.
func (b *Blocker) Sync(ctx context.Context) (bool, error) {
	users, err := b.o.Store.BlockedUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("userblock: loading blocked users: %w", err)
	}
	fresh := make(map[string]bool, len(users))
	for _, u := range users {
		fresh[u] = true
	}
	b.mu.Lock()
	same := len(fresh) == len(b.blocked)
	for u := range fresh {
		same = same && b.blocked[u]
	}
	if !same {
		b.blocked = fresh
	}
	b.mu.Unlock()
	if same {
		return false, nil
	}
	b.o.Logger.Info("blocked users changed in the store", "blocked", len(fresh))
	if b.o.OnChange != nil {
		b.o.OnChange(ctx)
	}
	return true, nil
}

// IsBlocked reports whether the user is blocked.
func (b *Blocker) IsBlocked(mxid string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.blocked[mxid]
}

// Users lists the blocked users, sorted.
func (b *Blocker) Users() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, 0, len(b.blocked))
	for u := range b.blocked {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// MemStore is a Store in memory.
type MemStore struct {
	mu sync.Mutex
	m  map[string]bool
}

// NewMemStore starts with the given blocked users.
func NewMemStore(users ...string) *MemStore {
	s := &MemStore{m: map[string]bool{}}
	for _, u := range users {
		s.m[u] = true
	}
	return s
}

func (s *MemStore) BlockedUsers(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for u := range s.m {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, nil
}

func (s *MemStore) SetBlocked(_ context.Context, mxid string, blocked bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if blocked {
		s.m[mxid] = true
	} else {
		delete(s.m, mxid)
	}
	return nil
}
