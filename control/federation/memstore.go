package federation

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for tests and single-process runs without persistence.
type MemoryStore struct {
	mu        sync.Mutex
	jws       []byte
	version   int64
	fetchedAt time.Time
	saves     int
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (s *MemoryStore) Save(_ context.Context, jws []byte, version int64, fetchedAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jws, s.version, s.fetchedAt = bytes.Clone(jws), version, fetchedAt
	s.saves++
	return nil
}

func (s *MemoryStore) Load(context.Context) ([]byte, int64, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.jws), s.version, s.fetchedAt, nil
}

// Saves counts successful Save calls.
func (s *MemoryStore) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}
