package fedlist

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
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
	// Domains maps the domain (matrix.ServerDomain: lower case, no port) to
	// its entry, so that a lookup is O(1) whatever the list size.
	Domains map[string]Entry
	// Skipped counts entries without a usable domain. They are dropped
	// rather than failing the list: one broken entry must not cut off the
	// federation for every other domain.
	Skipped int
}

// Contains reports whether domain (any case, with or without port) is in
// the list.
func (l *List) Contains(domain string) bool {
	if l == nil {
		return false
	}
	key, ok := matrix.ServerDomain(domain)
	if !ok {
		return false
	}
	_, ok = l.Domains[key]
	return ok
}

// MaxDomainLength bounds a listed domain (the Matrix limit for server names).
const MaxDomainLength = 255

// ParsePayload parses the JSON payload of the federation list (schema
// FederationList_main.json). Field names are read leniently: the provider as
// timAnbieter or timProvider, the IK numbers as ik or iks (both seen in
// gematik material). version is required; domainList may be empty. When a
// domain is listed twice, the later entry wins. A member of the wrong type
// makes the whole list malformed; null counts as absent.
// yieldEvery is how many list entries are parsed between yields.
const yieldEvery = 2048

func ParsePayload(b []byte) (*List, error) {
	// domainList is read entry by entry: a list of 100 000 domains is never
	// held as a parsed tree (see planvm.ParseJSONEach).
	l := &List{Domains: map[string]Entry{}}
	doc, err := planvm.ParseJSONEach(b, "domainList", func(i int, v planvm.Value) error {
		if i%yieldEvery == yieldEvery-1 {
			// Each entry leaves its parse behind as garbage. In a Wasm
			// VM the collector's background work runs only when the
			// program yields; without that the heap grew by the whole
			// parse (90 MB for 100 000 domains), and Wasm memory never
			// shrinks again.
			runtime.Gosched()
		}
		ent, err := parseEntry(v)
		if err != nil {
			return fault(ErrMalformed, "payload: domainList["+strconv.Itoa(i)+"]: "+err.Error())
		}
		d := strings.TrimSpace(ent.Domain)
		// Keyed by domain as every check compares server names
		// (matrix.ServerDomain: lower case, no port); an entry that is
		// no server name can match no request and is dropped.
		key, ok := matrix.ServerDomain(d)
		if !ok {
			l.Skipped++
			return nil
		}
		ent.Domain = d
		l.Domains[key] = ent
		return nil
	})
	if errors.Is(err, ErrMalformed) {
		return nil, err
	}
	if err != nil {
		return nil, fault(ErrMalformed, "payload: "+err.Error())
	}
	if doc.Kind() != planvm.KindObject {
		return nil, fault(ErrMalformed, "payload is not a JSON object")
	}
	ver := member(doc, "version")
	if !ver.IsDefined() {
		return nil, fault(ErrMalformed, "payload has no version")
	}
	var ok bool
	if l.Version, ok = ver.AsInt64(); !ok {
		return nil, fault(ErrMalformed, "payload: version is not an integer")
	}
	// Streamed when an array; anything else but null is of the wrong type.
	if k := member(doc, "domainList").Kind(); k != planvm.KindUndefined {
		return nil, fault(ErrMalformed, "payload: domainList is not an array")
	}
	return l, nil
}

// parseEntry reads one entry of domainList. Its strings are copied out of
// the parsed document into one allocation, so that the list does not keep
// the whole payload alive and costs little per entry.
func parseEntry(v planvm.Value) (Entry, error) {
	var e Entry
	switch v.Kind() {
	case planvm.KindNull:
		return e, nil
	case planvm.KindObject:
	default:
		return e, errors.New("not an object")
	}
	var err error
	if e.Domain, err = stringMember(v, "domain"); err != nil {
		return e, err
	}
	if e.TelematikID, err = stringMember(v, "telematikID"); err != nil {
		return e, err
	}
	if e.Provider, err = stringMember(v, "timAnbieter"); err != nil {
		return e, err
	}
	if e.Provider == "" {
		if e.Provider, err = stringMember(v, "timProvider"); err != nil {
			return e, err
		}
	}
	if e.IKs, err = stringsMember(v, "ik"); err != nil {
		return e, err
	}
	if e.IKs == nil {
		if e.IKs, err = stringsMember(v, "iks"); err != nil {
			return e, err
		}
	}
	if ins := member(v, "isInsurance"); ins.IsDefined() {
		var ok bool
		if e.IsInsurance, ok = ins.AsBool(); !ok {
			return e, errors.New("isInsurance is not a boolean")
		}
	}
	// One copy for all strings of the entry.
	n := len(e.Domain) + len(e.TelematikID) + len(e.Provider)
	for _, ik := range e.IKs {
		n += len(ik)
	}
	buf := make([]byte, 0, n)
	buf = append(append(append(buf, e.Domain...), e.TelematikID...), e.Provider...)
	for _, ik := range e.IKs {
		buf = append(buf, ik...)
	}
	all := string(buf)
	take := func(s string) string {
		s, all = all[:len(s)], all[len(s):]
		return s
	}
	e.Domain, e.TelematikID, e.Provider = take(e.Domain), take(e.TelematikID), take(e.Provider)
	for i, ik := range e.IKs {
		e.IKs[i] = take(ik)
	}
	return e, nil
}

// member returns o[key]; null counts as absent.
func member(o planvm.Value, key string) planvm.Value {
	v, _ := o.Get(key)
	if v.Kind() == planvm.KindNull {
		return planvm.Value{}
	}
	return v
}

// stringMember returns the string o[key], "" when absent.
func stringMember(o planvm.Value, key string) (string, error) {
	v := member(o, key)
	if !v.IsDefined() {
		return "", nil
	}
	s, ok := v.AsString()
	if !ok {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return s, nil
}

// stringsMember returns the array of strings o[key], nil when absent and
// non-nil (possibly empty) when present. A null element is "".
func stringsMember(o planvm.Value, key string) ([]string, error) {
	v := member(o, key)
	switch v.Kind() {
	case planvm.KindUndefined:
		return nil, nil
	case planvm.KindArray:
	default:
		return nil, fmt.Errorf("%s is not an array", key)
	}
	out := make([]string, v.Len())
	for i := range out {
		e := v.Index(i)
		if e.Kind() == planvm.KindNull {
			continue
		}
		s, ok := e.AsString()
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not a string", key, i)
		}
		out[i] = s
	}
	return out, nil
}
