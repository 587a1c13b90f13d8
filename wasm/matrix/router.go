package matrix

import (
	"errors"
	"strings"

	"github.com/timfd/fachdienst/wasm/internal/word"
)

// Router finds the endpoint of a request path in a table of endpoint
// templates (the allow-list of one listener, from the policy data): a trie
// of segments, built once when the table arrives, so that a lookup costs a
// table probe per segment however long the table is.
//
// Template syntax: segments separated by "/"; "{name}" is one non-empty
// segment of any value; "{name...}" as the last segment is one or more
// segments; "a|b" is either literal; a trailing "/" is a final empty
// segment. Literal segments match the raw segment exactly (a homeserver does
// not decode them either).
type Router struct {
	root node
}

type node struct {
	lit   map[string]*node // while the router is built
	lits  litTable         // lit, for lookups
	param *node
	rest  *Endpoint // a "{name...}" ending here
	ep    *Endpoint
}

// Endpoint is a leaf of the router: the template as written in the table
// and the facts its segments carry. A template with alternatives yields one
// Endpoint per spelling, each with its own version.
type Endpoint struct {
	Key     string // the template, as the table spells it (input.endpoint)
	kind    routeKind
	api     string
	version string
	// Indexes of the segments that hold facts; -1 when none.
	room, server, eventType, stateKey int8
}

// ErrBadTemplate is returned by NewRouter for a template it cannot read.
var ErrBadTemplate = errors.New("matrix: invalid endpoint template")

// NewRouter builds the router of the templates. Two templates that match
// the same paths are an error unless they are spelled the same, so every
// path has one endpoint key.
func NewRouter(templates []string) (*Router, error) {
	r := &Router{}
	for _, t := range templates {
		if err := r.add(t); err != nil {
			return nil, errors.New(ErrBadTemplate.Error() + ": " + t + ": " + err.Error())
		}
	}
	r.root.freeze()
	return r, nil
}

// freeze turns every node's literal map into its lookup table.
func (n *node) freeze() {
	n.lits = newLitTable(n.lit)
	for _, c := range n.lit {
		c.freeze()
	}
	if n.param != nil {
		n.param.freeze()
	}
	n.lit = nil
}

// litTable finds a node's literal child: open addressing over a hash of the
// segment's length and three of its bytes, compared a word at a time. In
// Wasm a Go map hashes a string byte by byte (there is no AES hash), which
// made the router's map accesses a third of its cost.
type litTable struct {
	mask  uint32
	slots []litSlot
}

type litSlot struct {
	key string
	n   *node
}

func newLitTable(m map[string]*node) litTable {
	if len(m) == 0 {
		return litTable{}
	}
	size := uint32(4)
	for size < 2*uint32(len(m)) {
		size *= 2
	}
	t := litTable{mask: size - 1, slots: make([]litSlot, size)}
	for k, c := range m {
		i := litHash(k) & t.mask
		for t.slots[i].n != nil {
			i = (i + 1) & t.mask
		}
		t.slots[i] = litSlot{k, c}
	}
	return t
}

func litHash(s string) uint32 {
	h := uint32(len(s))
	if len(s) > 0 {
		h = h*131 + uint32(s[0])
		h = h*131 + uint32(s[len(s)/2])
		h = h*131 + uint32(s[len(s)-1])
	}
	return h * 0x9e3779b1 >> 7
}

func (t *litTable) find(s string) *node {
	if t.slots == nil {
		return nil
	}
	for i := litHash(s) & t.mask; ; i = (i + 1) & t.mask {
		e := &t.slots[i]
		if e.n == nil {
			return nil
		}
		if len(e.key) == len(s) && word.Equal(e.key, s) {
			return e.n
		}
	}
}

func (r *Router) add(t string) error {
	if len(t) < 2 || t[0] != '/' {
		return errors.New("not an absolute path")
	}
	segs := strings.Split(t[1:], "/")
	if len(segs) > MaxSegments {
		return ErrLongPath
	}
	// Expand the alternatives into every spelling.
	spellings := [][]string{nil}
	for i, s := range segs {
		if s == "" && i < len(segs)-1 {
			return ErrEmptySegment
		}
		var alts []string
		switch {
		case isVar(s):
			if strings.HasSuffix(s, "...}") && i != len(segs)-1 {
				return errors.New("{name...} must be the last segment")
			}
			alts = []string{s}
		default:
			alts = strings.Split(s, "|")
			for _, a := range alts {
				if (a == "" && len(alts) > 1) || a == "." || a == ".." || strings.ContainsAny(a, "%{}?#") {
					return errors.New("invalid literal segment")
				}
			}
		}
		if len(spellings)*len(alts) > maxSpellings {
			return errors.New("too many alternatives")
		}
		var next [][]string
		for _, sp := range spellings {
			for _, a := range alts {
				next = append(next, append(append([]string(nil), sp...), a))
			}
		}
		spellings = next
	}
	for _, sp := range spellings {
		n := &r.root
		var leaf **Endpoint
		for i, s := range sp {
			switch {
			case strings.HasSuffix(s, "...}") && isVar(s):
				leaf = &n.rest
			case isVar(s):
				if n.param == nil {
					n.param = &node{}
				}
				n = n.param
			default:
				if n.lit == nil {
					n.lit = map[string]*node{}
				}
				c := n.lit[s]
				if c == nil {
					c = &node{}
					n.lit[s] = c
				}
				n = c
			}
			if i == len(sp)-1 && leaf == nil {
				leaf = &n.ep
			}
		}
		e := classifyTemplate(sp)
		e.Key = t
		switch {
		case *leaf == nil:
			*leaf = e
		case (*leaf).Key != t:
			return errors.New("matches the same paths as " + (*leaf).Key)
		}
	}
	return nil
}

// maxSpellings bounds what one template expands to, so that a table cannot
// make the router grow without bound.
const maxSpellings = 64

func isVar(s string) bool { return len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' }

// Match returns the endpoint of p, nil when the table has none. Literal
// children are tried before a variable, and a failed literal branch falls
// back to the variable; a step budget bounds the backtracking whatever the
// table.
func (r *Router) Match(p *Path) *Endpoint {
	budget := 4 * MaxSegments
	return r.root.match(p, 0, &budget)
}

func (n *node) match(p *Path, i int, budget *int) *Endpoint {
	if *budget--; *budget < 0 {
		return nil
	}
	if i == p.n {
		return n.ep
	}
	s := p.Seg(i)
	if c := n.lits.find(s); c != nil {
		if e := c.match(p, i+1, budget); e != nil {
			return e
		}
	}
	if s == "" {
		return nil // a variable is never empty
	}
	if n.param != nil {
		if e := n.param.match(p, i+1, budget); e != nil {
			return e
		}
	}
	if n.rest != nil && p.Seg(p.n-1) != "" {
		return n.rest
	}
	return nil
}

// classifyTemplate names the route of one spelling of a template: what
// facts Go reads for it. It runs when the table is loaded, so an endpoint
// an operator adds in any spelling gets the checks of its route.
func classifyTemplate(s []string) *Endpoint {
	e := &Endpoint{room: -1, server: -1, eventType: -1, stateKey: -1}
	at := func(i int, lits ...string) bool {
		if i >= len(s) {
			return false
		}
		for _, l := range lits {
			if s[i] == l {
				return true
			}
		}
		return false
	}
	n := len(s)
	switch {
	case n == 3 && at(0, ".well-known") && at(1, "matrix") && at(2, "server"):
		e.kind, e.api = kindWellKnownServer, APIWellKnown
	case n == 3 && at(0, ".well-known") && at(1, "matrix") && at(2, "client"):
		e.kind, e.api = kindWellKnownClient, APIWellKnown
	case at(0, ".well-known"):
		e.kind, e.api = kindWellKnownOther, APIWellKnown
	case n >= 3 && at(0, "_matrix") && at(1, "client"):
		e.api, e.kind = APIClient, kindClientOther
		if n == 3 && at(2, "versions") {
			e.kind = kindVersions
			break
		}
		b := 3
		e.version = s[2]
		if at(2, "api") && at(3, "v1") {
			e.version, b = "api/v1", 4
		}
		if isVar(e.version) {
			e.version = ""
		}
		classifyClientTail(e, s, b)
	case n >= 3 && at(0, "_matrix") && at(1, "media"):
		e.api, e.kind, e.version = APIMedia, kindMediaOther, s[2]
		classifyMediaTail(e, s, 3)
	case n >= 3 && at(0, "_matrix") && at(1, "federation"):
		e.api, e.kind, e.version = APIFederation, kindFederationOther, s[2]
		t := n - 3
		switch {
		case t == 3 && at(3, "invite"):
			e.kind, e.room = kindFederationInvite, 4
		case t == 2 && at(3, "exchange_third_party_invite"), t == 2 && at(3, "3pid") && at(4, "onbind"):
			e.kind = kindFederationThirdParty
		case t == 2 && at(3, "openid") && at(4, "userinfo"):
			e.kind = kindOpenIDUserinfo
		case t == 3 && at(3, "make_join", "make_knock", "send_join", "send_knock"):
			e.kind, e.room = kindFederationJoin, 4
		}
	case n >= 3 && at(0, "_synapse") && at(1, "client"):
		e.kind, e.api = kindSSO, APIClient
	case n >= 2 && at(0, "_matrix") && at(1, "key"):
		e.api, e.kind = APIKey, kindKeyServer
		if n >= 3 {
			e.version = s[2]
		}
	default:
		e.api, e.kind = APIOther, kindOther
	}
	return e
}

// classifyClientTail reads the client-server endpoint after the version
// (from index b).
func classifyClientTail(e *Endpoint, s []string, b int) {
	t := s[b:]
	is := func(i int, lit string) bool { return i < len(t) && t[i] == lit }
	switch {
	case len(t) == 1 && is(0, "login"):
		e.kind = kindLogin
	case len(t) >= 3 && is(0, "login") && (is(1, "sso") || is(1, "cas")):
		e.kind = kindSSO
	case (len(t) == 1 || len(t) == 2) && is(0, "createRoom"):
		e.kind = kindCreateRoom
	case (len(t) == 3 || len(t) == 4) && is(0, "rooms") && is(2, "invite"):
		e.kind, e.room = kindInvite, int8(b+1)
	case (len(t) == 3 || len(t) == 4) && is(0, "rooms") && is(2, "join"):
		e.kind, e.room = kindJoin, int8(b+1)
	case (len(t) == 2 || len(t) == 3) && (is(0, "join") || is(0, "knock")):
		e.kind, e.room = kindJoin, int8(b+1)
	case (len(t) == 4 || len(t) == 5) && is(0, "rooms") && is(2, "state"):
		e.kind, e.room, e.eventType = kindStateEvent, int8(b+1), int8(b+3)
		if len(t) == 5 {
			e.stateKey = int8(b + 4)
		}
	case len(t) >= 1 && is(0, "media"):
		classifyMediaTail(e, s, b+1)
	case len(t) >= 2 && is(0, "org.matrix.msc3916") && is(1, "media"):
		classifyMediaTail(e, s, b+2)
	}
}

// classifyMediaTail reads download|thumbnail/{serverName}/{mediaId}[/...]
// from index b.
func classifyMediaTail(e *Endpoint, s []string, b int) {
	if len(s) >= b+3 && (s[b] == "download" || s[b] == "thumbnail") {
		e.kind, e.server = kindMedia, int8(b+1)
		if e.api == APIClient {
			e.api = APIMedia
		}
	} else if e.api == APIClient {
		e.api, e.kind = APIMedia, kindMediaOther
	}
}
