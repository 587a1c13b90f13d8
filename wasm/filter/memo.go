package filter

import (
	"hash/maphash"
	"unsafe"

	"github.com/timfd/fachdienst/wasm/internal/word"
	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// memo remembers the decisions of recent inputs. A decision is a function of
// plan, data and input alone (unless the evaluation read the clock, which
// the filter then does not remember), so a request whose input equals an
// earlier one's gets the earlier decision without evaluating the policy:
// exact, not approximate. Installing a policy or a list clears it; the
// list's expiry is part of the key.
//
// A key is a flags byte and a list of strings: the members of the input
// document the request sets but its opaque strings (keyOf), or the header
// values they are read from (rawKeyOf). The opaque strings — the path,
// which carries transaction and event ids, and the invitees' user IDs —
// are not in the facts key: the slot holds what the evaluation observed of
// them (planvm.Observation), and a request with the same key gets the
// decision when its opaque strings give every observed outcome (a lookup
// of the path among the exempt paths that found nothing, a prefix test
// that failed, an invitee not among the blocked users). An evaluation that
// used them otherwise is remembered for exactly its own opaque strings.
//
// The strings are views into the request's buffers, hashed and compared
// where they are; a slot stores its key encoded (each string
// length-prefixed, so no two lists share an encoding) in a buffer it
// reuses. The table is two-way set-associative with a fixed number of
// slots: a hash picks a pair of slots, and a key goes into either. With
// one slot per hash, two keys that repeat and share a slot evicted each
// other for good, and which keys shared one depended on the random seed
// (one VM in six lost 6 % of a client-server mix's hits that way). Two
// variants of one key (an exempt path beside ordinary ones) can be held
// side by side as well. Neither a hit nor a miss allocates once the slots
// have grown to their keys' length. The table never holds more than memoSlots keys of at most
// memoMaxKey bytes (512 KiB).
//
// Admission: most header keys never repeat (a GET of an event or a media
// file by a new id), and each of them would evict a key that does. So a
// key takes an empty slot of its pair at once, but replaces the one not hit
// last only when it missed before: the seen table holds a tag of the keys
// that missed once (a doorkeeper), and a one-off key leaves nothing behind
// but its tag.
type memo struct {
	seed  uint64
	slots []memoSlot
	// last is, per pair of slots, the one hit or filled last (0 or 1).
	last []uint8
	seen []uint32
	key  memoKey // the current request's facts key
	raw  memoKey // the current request's header key
	// opaque are the current request's opaque strings (keyOf), by number.
	opaque []string
	// hit is the slot of the last hit (for the audit).
	hit   *memoSlot
	stats memoStats
}

// memoStats count since the last flush: hits are requests answered from the
// memo, misses evaluations of the policy (the first of a request), evictions
// entries replaced by another key, and skipped keys not admitted.
type memoStats struct {
	hits, misses, evictions, skipped uint64
}

type memoSlot struct {
	used bool
	hash uint64
	key  []byte // the key, encoded
	dec  decision
	// obs is what the decision's evaluation observed of the opaque strings
	// (facts keys; nil for header keys, which hold the whole path).
	obs []planvm.Observation
	// input is the input document's JSON, kept only while memoAudit is on.
	input []byte
}

// memoAudit makes every hit rebuild the request's input and compare it
// with the input the remembered decision was evaluated on (tests set it:
// any difference would be a stale decision, see auditHit).
var memoAudit bool

// memoKey is a key before it is stored: flags and the strings in order.
type memoKey struct {
	flags byte
	n     int
	size  int // the encoded length
	f     [memoMaxFields]string
}

// memoSlots is the table size (a power of two). Each slot holds a key of
// typically 60–150 bytes and a decision that shares its strings and body
// with every other request that got it.
const memoSlots = 1024

// memoSeen is the size of the doorkeeper's table of tags (a power of two,
// 16 KiB): a key that repeats within a few thousand one-off keys is
// admitted on its second miss.
const memoSeen = 4096

// memoMaxKey and memoMaxFields bound what is remembered: inputs with longer
// keys (long paths, many invitees) are evaluated each time and keep no
// buffer that large.
const (
	memoMaxKey    = 512
	memoMaxFields = 16
)

// memoKey.equal reads length prefixes of at most two bytes.
const _ = uint(1<<14 - memoMaxKey)

func newMemo() *memo {
	// A random seed, so that which inputs share a slot cannot be known
	// from outside (a colliding input only evicts, but evicting on purpose
	// would make every request evaluate).
	seed := maphash.String(maphash.MakeSeed(), "memo")
	return &memo{seed: seed, slots: make([]memoSlot, memoSlots), last: make([]uint8, memoSlots/2), seen: make([]uint32, memoSeen)}
}

// clear forgets every decision.
func (m *memo) clear() {
	for i := range m.slots {
		m.slots[i].used = false
		m.slots[i].dec = decision{}
		m.slots[i].obs = clearObs(m.slots[i].obs)
		m.slots[i].input = nil
	}
	clear(m.seen)
}

// lookup returns the decision remembered for k (built by keyOf or
// rawKeyOf) whose observations the opaque strings give (none for a header
// key), valid until the next store, and the key's hash for store.
// The strings are hashed and compared a word at a time and in place: in
// Wasm the runtime's byte loops (maphash, bytes.Equal) and copying them
// into one buffer first cost more than the rest of a remembered request.
func (m *memo) lookup(k *memoKey, opaque []string) (*decision, uint64, bool) {
	h := word.Hash(m.seed^uint64(k.flags), k.f[:k.n])
	pair := h & (memoSlots/2 - 1)
	for w := range 2 {
		s := &m.slots[2*pair+uint64(w)]
		if s.used && s.hash == h && k.equal(s.key) && planvm.Replay(s.obs, opaque) {
			m.stats.hits++
			m.last[pair] = uint8(w)
			m.hit = s
			return &s.dec, h, true
		}
	}
	return nil, h, false
}

// store remembers d for k, which lookup just missed, with what its
// evaluation observed of the opaque strings, unless both slots of its pair
// are taken and k has not missed before (see memo). It returns the slot,
// nil when d was not stored.
func (m *memo) store(k *memoKey, h uint64, d decision, obs []planvm.Observation) *memoSlot {
	pair := h & (memoSlots/2 - 1)
	w := uint64(0)
	switch {
	case !m.slots[2*pair].used:
	case !m.slots[2*pair+1].used:
		w = 1
	default:
		// The tag's index uses the hash's other half: keys that share a
		// pair rarely share a tag's place, and a tag is never 0 (empty).
		i, tag := (h>>32)&(memoSeen-1), uint32(h)|1
		if m.seen[i] != tag {
			m.seen[i] = tag
			m.stats.skipped++
			return nil
		}
		m.seen[i] = 0
		m.stats.evictions++
		w = 1 - uint64(m.last[pair])
	}
	s := &m.slots[2*pair+w]
	m.last[pair] = uint8(w)
	s.used, s.hash, s.key, s.dec = true, h, k.encode(s.key[:0]), d
	s.obs = clearObs(s.obs)
	for _, o := range obs {
		s.obs = append(s.obs, o.Detach())
	}
	s.input = nil
	return s
}

// clearObs empties obs, dropping the data and strings it refers to.
func clearObs(obs []planvm.Observation) []planvm.Observation {
	clear(obs)
	return obs[:0]
}

// full reports whether both slots of hash h's pair are taken.
func (m *memo) full(h uint64) bool {
	pair := h & (memoSlots/2 - 1)
	return m.slots[2*pair].used && m.slots[2*pair+1].used
}

// takeStats returns the counts since the last call and resets them.
func (m *memo) takeStats() memoStats {
	st := m.stats
	m.stats = memoStats{}
	return st
}

// reset starts a key with flags; add appends a string. full reports whether
// the key has gone over the bounds (then it is not remembered).
func (k *memoKey) reset(flags byte) { k.flags, k.n, k.size = flags, 0, 1 }

func (k *memoKey) add(s string) {
	if k.n < memoMaxFields {
		k.f[k.n] = s
	}
	k.n++
	k.size += lenSize(len(s)) + len(s)
}

func (k *memoKey) full() bool { return k.n > memoMaxFields || k.size > memoMaxKey }

// encode appends the key's encoding: the flags, then each string after its
// length as a varint.
func (k *memoKey) encode(b []byte) []byte {
	b = append(b, k.flags)
	for _, f := range k.f[:k.n] {
		b = appendLen(b, len(f))
		b = append(b, f...)
	}
	return b
}

// equal reports whether enc is k's encoding, reading it in place, a word
// at a time.
func (k *memoKey) equal(enc []byte) bool {
	if len(enc) != k.size || enc[0] != k.flags {
		return false
	}
	e := bytesView(enc)
	i := 1
	for _, f := range k.f[:k.n] {
		// The length prefix: one byte below 128, two below 16 384 (more
		// would exceed memoMaxKey).
		n := len(f)
		if n < 0x80 {
			if int(e[i]) != n {
				return false
			}
			i++
		} else {
			if int(e[i]) != n&0x7f|0x80 || int(e[i+1]) != n>>7 {
				return false
			}
			i += 2
		}
		if !word.Equal(e[i:i+n], f) {
			return false
		}
		i += n
	}
	return i == len(e)
}

// keyFlags are the flag bits both kinds of key share.
func keyFlags(expired, hasXM bool) byte {
	flags := byte(0)
	if expired {
		flags |= 1
	}
	if hasXM {
		flags |= 2
	}
	return flags
}

// keyOf sets m.key to the input's content but its opaque strings: every
// member of the input document (docs/policy-contract.md) that the request
// sets, with the endpoint template in place of the path, the X-Matrix
// destination but not the origin, the number of invitees and no media
// server; and m.opaque
// to the opaque strings, numbered as input numbers them (opaqueNumbers). It
// reports false when the key would exceed the bounds.
func (m *memo) keyOf(f *facts, expired bool) (*memoKey, bool) {
	flags := keyFlags(expired, f.hasXM)
	if f.hasInvite {
		flags |= 4
	}
	if f.thirdParty {
		flags |= 8
	}
	originDomain, hasOriginDomain := "", false
	if f.hasXM {
		// Whether the origin is a server name is in the key: the input
		// then has an origin_domain member, else none.
		if originDomain, hasOriginDomain = matrix.ServerDomain(f.origin); hasOriginDomain {
			flags |= 16
		}
	}
	if len(f.invitees) > memoMaxInvitees {
		return nil, false
	}
	k := &m.key
	k.reset(flags)
	k.add(f.method)
	k.add(f.hostPort)
	k.add(f.route.Name)
	k.add(f.route.Endpoint)
	k.add(f.clientID)
	if f.hasXM {
		k.add(f.destination)
	}
	if f.hasInvite {
		k.add(f.inviter)
		k.add(f.invitee)
	}
	k.add(inviteeCounts[len(f.invitees)])
	// Servers and invitees never come together (join versus invite
	// routes, and the route is in the key).
	for _, d := range f.servers {
		k.add(d)
	}
	o := append(m.opaque[:0], f.path)
	if f.hasXM {
		o = append(o, f.origin, originDomain)
	}
	for _, inv := range f.invitees {
		d, _ := matrix.UserDomain(inv)
		o = append(o, inv, d)
	}
	if f.route.Name == matrix.RouteMedia {
		o = append(o, serverDomain(f.route.MediaServer))
	}
	m.opaque = o
	return k, !k.full()
}

// opaqueNumbers are the numbers of the input's opaque strings: the path is
// 0; with X-Matrix, the origin and its domain 1 and 2; then invitee i's user
// ID and domain next+2i and next+2i+1, or the media server next (a route
// has invitees or a media server, never both).
func (f *facts) opaqueNumbers() (origin, next int) {
	if f.hasXM {
		return 1, 3
	}
	return -1, 1
}

// memoMaxInvitees bounds the invitees of a remembered input.
const memoMaxInvitees = 16

// inviteeCounts are the key's strings for 0…memoMaxInvitees invitees.
var inviteeCounts = func() (c [memoMaxInvitees + 1]string) {
	for i := range c {
		c[i] = string(rune('a' + i))
	}
	return c
}()

// Header keys. The facts are a function of the header values alone
// (facts.fromValues), the Authorization values counting only through the
// X-Matrix authorization they hold (headerValues.collect); so a request with
// the same header values and the same X-Matrix origin and destination as an
// earlier one has the earlier one's decision, and the filter can answer it
// without reading the facts. GET and HEAD requests get a header key: they
// repeat (sync, versions, profiles, push rules, media) and have no body. So
// do other requests with X-Matrix but PUT: a server's queries and key
// requests are signed, and the key leaves out the signature, which differs
// per request. Other methods' paths carry transaction ids (every federation
// PUT: transactions, invites, joins), so a header key would only cost them
// a lookup that never finds anything; the facts key, which leaves the path
// out, answers them. The first byte keeps header keys apart from
// facts keys (whose flags stay below rawFlag).
const rawFlag = 0x80

// rawKeyOf sets m.raw to the header key of r; false when it would exceed
// the bounds or the request gets none (see above).
func (m *memo) rawKeyOf(r *headerValues, expired bool) (*memoKey, bool) {
	switch {
	case r.method == "GET", r.method == "HEAD":
	case r.hasXM && r.method != "PUT":
	default:
		return nil, false
	}
	flags := rawFlag | keyFlags(expired, r.hasXM)
	k := &m.raw
	k.reset(flags)
	k.add(r.method)
	k.add(r.path)
	k.add(r.hostPort)
	k.add(r.ua)
	k.add(r.timUA)
	k.add(r.tiUA)
	if r.hasXM {
		k.add(r.origin)
		k.add(r.destination)
	}
	return k, !k.full()
}

// rawKey is the header key rawKeyOf set last.
func (m *memo) rawKey() *memoKey { return &m.raw }

// appendLen writes n as a varint.
func appendLen(k []byte, n int) []byte {
	for n >= 0x80 {
		k = append(k, byte(n)|0x80)
		n >>= 7
	}
	return append(k, byte(n))
}

// lenSize is the length of n's varint.
func lenSize(n int) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}

// bytesView is b as a string without a copy, for a comparison during which
// b does not change.
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
