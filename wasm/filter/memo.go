package filter

import (
	"bytes"
	"hash/maphash"
)

// memo remembers the decisions of recent inputs. A decision is a function of
// plan, data and input alone (unless the evaluation read the clock, which
// the filter then does not remember), so a request whose input equals an
// earlier one's gets the earlier decision without evaluating the policy:
// exact, not approximate. Installing a policy or a list clears it; the
// list's expiry is part of the key.
//
// The key is the input document's content in a fixed binary layout (see
// keyOf; rawKeyOf for keys made of header values), built in a reused
// buffer; the table is direct-mapped with a fixed number of slots whose key
// buffers are reused, so neither a hit nor a miss allocates once the slots
// have grown to their keys' length. A colliding input replaces the slot's
// entry; the table never holds more than memoSlots keys of at most
// memoMaxKey bytes (512 KiB).
type memo struct {
	seed  maphash.Seed
	slots []memoSlot
	key   []byte // scratch for the current request's facts key
	raw   []byte // scratch for the current request's header key
}

type memoSlot struct {
	used bool
	hash uint64
	key  []byte
	dec  decision
}

// memoSlots is the table size (a power of two). Each slot holds a key of
// typically 60–150 bytes and a decision that shares its strings and body
// with every other request that got it.
const memoSlots = 1024

// memoMaxKey bounds what is remembered: inputs with longer keys (long paths,
// many invitees) are evaluated each time and keep no buffer that large.
const memoMaxKey = 512

func newMemo() *memo {
	return &memo{seed: maphash.MakeSeed(), slots: make([]memoSlot, memoSlots),
		key: make([]byte, 0, memoMaxKey), raw: make([]byte, 0, memoMaxKey)}
}

// clear forgets every decision.
func (m *memo) clear() {
	for i := range m.slots {
		m.slots[i].used = false
		m.slots[i].dec = decision{}
	}
}

// lookup returns the decision remembered for key (built by keyOf or
// rawKeyOf), valid until the next store, and the key's hash for store.
func (m *memo) lookup(key []byte) (*decision, uint64, bool) {
	h := maphash.Bytes(m.seed, key)
	s := &m.slots[h&(memoSlots-1)]
	if s.used && s.hash == h && bytes.Equal(s.key, key) {
		return &s.dec, h, true
	}
	return nil, h, false
}

// store remembers d for key.
func (m *memo) store(key []byte, h uint64, d decision) {
	s := &m.slots[h&(memoSlots-1)]
	s.used, s.hash, s.key, s.dec = true, h, append(s.key[:0], key...), d
}

// keyOf writes the input's content into m.key: every member of the input
// document (docs/policy-contract.md) that the request sets, each string
// length-prefixed so that no two inputs share a key. It reports false when
// the key would exceed memoMaxKey.
func (m *memo) keyOf(f *facts, expired bool) ([]byte, bool) {
	k := m.key[:0]
	flags := byte(0)
	if expired {
		flags |= 1
	}
	if f.hasXM {
		flags |= 2
	}
	if f.hasInvite {
		flags |= 4
	}
	k = append(k, flags)
	k = appendStr(k, f.method)
	k = appendStr(k, f.path)
	k = appendStr(k, f.hostPort)
	k = appendStr(k, f.route.Name)
	k = appendStr(k, f.route.MediaServer)
	k = appendStr(k, f.clientID)
	if f.hasXM {
		k = appendStr(k, f.xm.Origin)
		k = appendStr(k, f.xm.Destination)
	}
	if f.hasInvite {
		k = appendStr(k, f.inviter)
		k = appendStr(k, f.invitee)
	}
	k = appendLen(k, len(f.invitees))
	for _, inv := range f.invitees {
		k = appendStr(k, inv)
	}
	if len(k) > memoMaxKey {
		// k has left m.key's buffer (its capacity is memoMaxKey), which
		// stays as it was: one long request does not grow it for good.
		return nil, false
	}
	m.key = k
	return k, true
}

// Header keys. The facts are a function of the header values alone
// (facts.fromValues), and of the Authorization values only when one of them
// names the X-Matrix scheme; so for a request without X-Matrix the decision
// of a request with the same header values is its decision, and the filter
// can answer it without reading the facts. Only GET and HEAD requests get
// a header key: they repeat (sync, versions, profiles, push rules, media)
// and have no body, while the others' paths carry transaction ids, so a key
// would only cost them a lookup that never finds anything. The first byte
// keeps header keys apart from facts keys (whose flags stay below rawFlag).
const rawFlag = 0x80

// rawKeyOf writes the header key of r into m.raw; false when it would
// exceed memoMaxKey, for other methods, or when an Authorization value is
// X-Matrix.
func (m *memo) rawKeyOf(r *headerValues, expired bool) ([]byte, bool) {
	if r.xmatrix || (r.method != "GET" && r.method != "HEAD") {
		return nil, false
	}
	flags := byte(rawFlag)
	if expired {
		flags |= 1
	}
	k := append(m.raw[:0], flags)
	k = appendStr(k, r.method)
	k = appendStr(k, r.path)
	k = appendStr(k, r.hostPort)
	k = appendStr(k, r.ua)
	k = appendStr(k, r.timUA)
	k = appendStr(k, r.tiUA)
	if len(k) > memoMaxKey {
		return nil, false
	}
	m.raw = k
	return k, true
}

// rawKey is the header key rawKeyOf wrote last.
func (m *memo) rawKey() []byte { return m.raw }

func appendStr(k []byte, s string) []byte {
	k = appendLen(k, len(s))
	return append(k, s...)
}

// appendLen writes n as a varint.
func appendLen(k []byte, n int) []byte {
	for n >= 0x80 {
		k = append(k, byte(n)|0x80)
		n >>= 7
	}
	return append(k, byte(n))
}
