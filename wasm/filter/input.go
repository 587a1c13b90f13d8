package filter

import (
	"strings"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Interned values of the input document: building the input allocates only
// for what differs per request.
var (
	directionValues = map[string]planvm.Value{
		"client":     planvm.String("client"),
		"federation": planvm.String("federation"),
		"egress":     planvm.String("egress"),
	}
	boolTrue  = planvm.Bool(true)
	boolFalse = planvm.Bool(false)
)

// input builds the policy input (docs/policy-contract.md) in the plugin's
// reused storage: a VM evaluates one request at a time and the input lives
// only during that evaluation, so the next request overwrites it.
func (s *stream) input(expired bool) planvm.Value {
	f := &s.f
	in := s.p.inputStorage()
	b := in.doc
	b.Reset()
	b.Set("direction", directionValues[s.p.cfg.Direction])
	b.Set("method", planvm.String(f.method))
	// The path, the X-Matrix origin, the invitees and the media server are
	// opaque (memo.keyOf).
	b.Set("path", planvm.Opaque(f.path, 0))
	b.Set("host", planvm.String(f.host))
	if f.hostPort != f.host {
		b.Set("host_port", planvm.String(f.hostPort))
	}
	b.Set("route", planvm.String(f.route.Name))
	if f.route.Endpoint != "" {
		b.Set("endpoint", planvm.String(f.route.Endpoint))
	}
	if f.clientID != "" {
		b.Set("client_id", planvm.String(f.clientID))
	}
	originN, inviteeN := f.opaqueNumbers()
	if f.hasXM {
		xb := in.xmatrix
		xb.Reset()
		xb.Set("origin", planvm.Opaque(f.origin, originN))
		if d, ok := matrix.ServerDomain(f.origin); ok {
			xb.Set("origin_domain", planvm.Opaque(d, originN+1))
		}
		if f.destination != "" {
			xb.Set("destination", planvm.String(f.destination))
			if d, ok := matrix.ServerDomain(f.destination); ok {
				xb.Set("destination_domain", planvm.String(d))
			}
		}
		b.Set("xmatrix", xb.Value())
	}
	switch f.route.Name {
	case matrix.RouteCreateRoom, matrix.RouteInvite:
		arr := in.invitees
		if len(f.invitees) > reusedInvitees {
			// Not kept: one large invite list must not grow the storage for good.
			arr = planvm.NewArrayBuilder(len(f.invitees))
		}
		arr.Reset()
		for i, mxid := range f.invitees {
			ob := in.invitee(i)
			ob.Set("mxid", opaqueOrString(mxid, inviteeN+2*i))
			ob.Set("domain", opaqueOrString(userDomain(mxid), inviteeN+2*i+1))
			arr.Append(ob.Value())
		}
		b.Set("invitees", arr.Value())
		if f.thirdParty {
			b.Set("invite_3pid", boolTrue)
		}
	case matrix.RouteFederationInvite:
		if f.hasInvite {
			ib := in.invite
			ib.Reset()
			ib.Set("inviter", planvm.String(f.inviter))
			ib.Set("invitee", planvm.String(f.invitee))
			ib.Set("inviter_domain", planvm.String(userDomain(f.inviter)))
			ib.Set("invitee_domain", planvm.String(userDomain(f.invitee)))
			b.Set("invite", ib.Value())
		}
	case matrix.RouteMedia:
		b.Set("media_server", planvm.Opaque(serverDomain(f.route.MediaServer), inviteeN))
	case matrix.RouteJoin:
		arr := in.servers
		if len(f.servers) > reusedInvitees {
			arr = planvm.NewArrayBuilder(len(f.servers))
		}
		arr.Reset()
		for _, d := range f.servers {
			arr.Append(planvm.String(d))
		}
		b.Set("servers", arr.Value())
	}
	if len(s.dl.from) > 0 {
		b.Set("delegated_from", s.p.delegatedFrom(s.dl.from))
	}
	if expired {
		b.Set("federation_list_expired", boolTrue)
	} else {
		b.Set("federation_list_expired", boolFalse)
	}
	return b.Value()
}

// opaqueOrString is planvm.Opaque(s, n), or a plain string past the
// numbers an input may have (keyOf does not remember such an input).
func opaqueOrString(s string, n int) planvm.Value {
	if n < planvm.MaxOpaque {
		return planvm.Opaque(s, n)
	}
	return planvm.String(s)
}

// inputStorage holds the input document's objects between requests.
type inputStorage struct {
	doc, xmatrix, invite *planvm.ObjectBuilder
	invitees, servers    *planvm.ArrayBuilder
	inviteeObjs          []*planvm.ObjectBuilder
}

// reusedInvitees bounds the invitee objects kept between requests; a
// request with more invitees builds the rest afresh.
const reusedInvitees = 4

func (p *plugin) inputStorage() *inputStorage {
	if p.in == nil {
		p.in = &inputStorage{
			doc:      planvm.NewObjectBuilder(maxInputLen),
			xmatrix:  planvm.NewObjectBuilder(4),
			invite:   planvm.NewObjectBuilder(4),
			invitees: planvm.NewArrayBuilder(1),
			servers:  planvm.NewArrayBuilder(2),
		}
	}
	return p.in
}

// invitee returns an empty object builder for the i-th invitee.
func (in *inputStorage) invitee(i int) *planvm.ObjectBuilder {
	if i >= reusedInvitees {
		return planvm.NewObjectBuilder(2)
	}
	for len(in.inviteeObjs) <= i {
		in.inviteeObjs = append(in.inviteeObjs, planvm.NewObjectBuilder(2))
	}
	ob := in.inviteeObjs[i]
	ob.Reset()
	return ob
}

// maxInputLen is the most members input sets (see inputLen).
const maxInputLen = 12

// inputLen is the number of members input sets; TestInputLen keeps it, and
// so maxInputLen, true to input.
func (s *stream) inputLen() int {
	f := &s.f
	n := 6 // direction, method, path, host, route, federation_list_expired
	if f.hostPort != f.host {
		n++
	}
	if len(s.dl.from) > 0 {
		n++
	}
	if f.clientID != "" {
		n++
	}
	if f.hasXM {
		n++
	}
	if f.route.Endpoint != "" {
		n++
	}
	switch f.route.Name {
	case matrix.RouteCreateRoom, matrix.RouteInvite:
		n++
		if f.thirdParty {
			n++
		}
	case matrix.RouteMedia, matrix.RouteJoin:
		n++
	case matrix.RouteFederationInvite:
		if f.hasInvite {
			n++
		}
	}
	return n
}

// userDomain is the domain of a user ID (matrix.UserDomain): the key of
// the federation list (which lists domains without ports).
func userDomain(mxid string) string {
	d, _ := matrix.UserDomain(mxid)
	return d
}

// serverDomain is the domain of a server name (matrix.ServerDomain); a
// value that is no server name stays as it is, lower-cased, and so matches
// no domain of the list.
func serverDomain(server string) string {
	if d, ok := matrix.ServerDomain(server); ok {
		return d
	}
	return strings.ToLower(server)
}
