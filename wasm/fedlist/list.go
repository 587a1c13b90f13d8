package fedlist

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Entry is one domain of the federation list.
type Entry struct {
	Domain      string   // as listed; the List key is its lower-case form
	TelematikID string   // Telematik-ID of the organisation using the domain
	Provider    string   // timAnbieter (older lists: timProvider)
	IKs         []string // ik (older lists: iks)
	IsInsurance bool
}

// List is a parsed federation list.
type List struct {
	Version int64
	// Domains maps the lower-case domain to its entry, so that a lookup is
	// O(1) whatever the list size.
	Domains map[string]Entry
	// Skipped counts entries without a usable domain. They are dropped
	// rather than failing the list: one broken entry must not cut off the
	// federation for every other domain.
	Skipped int
}

// Contains reports whether domain (any case) is in the list.
func (l *List) Contains(domain string) bool {
	if l == nil {
		return false
	}
	_, ok := l.Domains[strings.ToLower(domain)]
	return ok
}

type payloadJSON struct {
	Version    *int64      `json:"version"`
	DomainList []entryJSON `json:"domainList"`
}

type entryJSON struct {
	Domain      string   `json:"domain"`
	TelematikID string   `json:"telematikID"`
	TimAnbieter string   `json:"timAnbieter"`
	TimProvider string   `json:"timProvider"`
	IK          []string `json:"ik"`
	IKs         []string `json:"iks"`
	IsInsurance bool     `json:"isInsurance"`
}

// MaxDomainLength bounds a listed domain (the Matrix limit for server names).
const MaxDomainLength = 255

// ParsePayload parses the JSON payload of the federation list (schema
// FederationList_main.json). Field names are read leniently: the provider as
// timAnbieter or timProvider, the IK numbers as ik or iks (both seen in
// gematik material). version is required; domainList may be empty. When a
// domain is listed twice, the later entry wins.
func ParsePayload(b []byte) (*List, error) {
	var p payloadJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if p.Version == nil {
		return nil, fmt.Errorf("%w: payload has no version", ErrMalformed)
	}
	l := &List{Version: *p.Version, Domains: make(map[string]Entry, len(p.DomainList))}
	for _, e := range p.DomainList {
		d := strings.TrimSpace(e.Domain)
		if d == "" || len(d) > MaxDomainLength {
			l.Skipped++
			continue
		}
		ent := Entry{
			Domain:      d,
			TelematikID: e.TelematikID,
			Provider:    e.TimAnbieter,
			IKs:         e.IK,
			IsInsurance: e.IsInsurance,
		}
		if ent.Provider == "" {
			ent.Provider = e.TimProvider
		}
		if ent.IKs == nil {
			ent.IKs = e.IKs
		}
		l.Domains[strings.ToLower(d)] = ent
	}
	return l, nil
}
