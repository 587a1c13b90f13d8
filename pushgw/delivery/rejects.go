package delivery

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// rejects remembers pushkeys a provider refused for good, bounded in size and
// time. Keys are stored as digests: the memory holds no pushkey in clear.
type rejects struct {
	mu    sync.Mutex
	cap   int
	ttl   time.Duration
	now   func() time.Time
	byKey map[[32]byte]*list.Element
	order *list.List // oldest first
}

type rejectEntry struct {
	key     [32]byte
	expires time.Time
}

func newRejects(capacity int, ttl time.Duration, now func() time.Time) *rejects {
	return &rejects{cap: capacity, ttl: ttl, now: now, byKey: map[[32]byte]*list.Element{}, order: list.New()}
}

func rejectKey(appID, pushKey string) [32]byte {
	h := sha256.New()
	h.Write([]byte(appID))
	h.Write([]byte{0})
	h.Write([]byte(pushKey))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (r *rejects) add(appID, pushKey string) {
	k := rejectKey(appID, pushKey)
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[k]; ok {
		r.order.Remove(el)
	}
	r.byKey[k] = r.order.PushBack(&rejectEntry{key: k, expires: r.now().Add(r.ttl)})
	for r.order.Len() > r.cap {
		oldest := r.order.Front()
		r.order.Remove(oldest)
		delete(r.byKey, oldest.Value.(*rejectEntry).key)
	}
}

func (r *rejects) has(appID, pushKey string) bool {
	k := rejectKey(appID, pushKey)
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byKey[k]
	if !ok {
		return false
	}
	if r.now().After(el.Value.(*rejectEntry).expires) {
		r.order.Remove(el)
		delete(r.byKey, k)
		return false
	}
	return true
}

func (r *rejects) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}
