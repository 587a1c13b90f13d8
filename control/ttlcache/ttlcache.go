// Package ttlcache is a bounded, expiring key/value cache safe for concurrent use.
//
// The control plane caches answers from systems outside the provider (homeserver token checks,
// VZD localization) for a short time. Both caches must stay bounded whatever the traffic, so the
// cache evicts the least recently used entry when it is full and drops entries when they expire.
package ttlcache

import (
	"container/list"
	"sync"
	"time"
)

// Cache maps keys to values for at most TTL and holds at most Size entries.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front = most recently used
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
}

// New returns a cache of at most size entries (at least 1) that live for ttl.
func New[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	if size < 1 {
		size = 1
	}
	return &Cache[K, V]{size: size, ttl: ttl, now: time.Now, order: list.New(), items: make(map[K]*list.Element, size)}
}

// SetClock replaces the clock; tests use it to expire entries without sleeping.
func (c *Cache[K, V]) SetClock(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// Get returns the value for key when present and not expired.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// Put stores value for key with the cache's TTL.
func (c *Cache[K, V]) Put(key K, value V) {
	c.PutTTL(key, value, c.ttl)
}

// PutTTL stores value for key for ttl, capped at the cache's TTL.
func (c *Cache[K, V]) PutTTL(key K, value V, ttl time.Duration) {
	if ttl > c.ttl {
		ttl = c.ttl
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := c.now().Add(ttl)
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[K, V])
		e.value, e.expires = value, expires
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry[K, V]).key)
	}
	c.items[key] = c.order.PushFront(&entry[K, V]{key: key, value: value, expires: expires})
}

// Len reports the number of entries held, expired ones included until they are touched.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
