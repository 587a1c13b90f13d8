package ttlcache

import (
	"testing"
	"time"
)

func TestBoundedAndExpiring(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[string, int](2, time.Minute)
	c.SetClock(func() time.Time { return now })

	c.Put("a", 1)
	c.Put("b", 2)
	if _, ok := c.Get("a"); !ok { // a becomes most recently used
		t.Fatal("a missing")
	}
	c.Put("c", 3) // evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Fatal("b should have been evicted")
	}
	if c.Len() != 2 {
		t.Fatalf("len = %d, want 2", c.Len())
	}
	now = now.Add(time.Minute)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a should have expired")
	}
	c.PutTTL("d", 4, time.Hour) // capped at the cache TTL
	now = now.Add(time.Minute)
	if _, ok := c.Get("d"); ok {
		t.Fatal("d should have expired after the cache TTL")
	}
}
