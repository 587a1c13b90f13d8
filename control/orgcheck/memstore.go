package orgcheck

import (
	"context"
	"slices"
	"sort"
	"sync"
)

// MemStore is a Store in memory, for tests and the local stand-alone run.
type MemStore struct {
	mu   sync.Mutex
	orgs map[string]*Organisation
}

// NewMemStore holds the given organisations.
func NewMemStore(orgs ...Organisation) *MemStore {
	m := &MemStore{orgs: map[string]*Organisation{}}
	for _, o := range orgs {
		m.Put(o)
	}
	return m
}

// Put adds or replaces an organisation.
func (m *MemStore) Put(o Organisation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o.Domains = slices.Clone(o.Domains)
	m.orgs[o.TelematikID] = &o
}

func (m *MemStore) Organisations(context.Context) ([]Organisation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Organisation, 0, len(m.orgs))
	for _, o := range m.orgs {
		c := *o
		c.Domains = slices.Clone(o.Domains)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TelematikID < out[j].TelematikID })
	return out, nil
}

func (m *MemStore) Organisation(_ context.Context, id string) (Organisation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orgs[id]
	if !ok {
		return Organisation{}, ErrNotFound
	}
	c := *o
	c.Domains = slices.Clone(o.Domains)
	return c, nil
}

func (m *MemStore) SetStatus(_ context.Context, id string, st Status) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orgs[id]
	if !ok {
		return ErrNotFound
	}
	o.Status = st
	return nil
}

func (m *MemStore) RemoveDomain(_ context.Context, id, domain string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orgs[id]
	if !ok {
		return ErrNotFound
	}
	o.Domains = slices.DeleteFunc(o.Domains, func(d string) bool { return d == domain })
	return nil
}
