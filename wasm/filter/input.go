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

// input builds the policy input (docs/policy-contract.md).
func (s *stream) input(expired bool) planvm.Value {
	f := &s.f
	b := planvm.NewObjectBuilder(s.inputLen())
	b.Set("direction", directionValues[s.p.cfg.Direction])
	b.Set("method", planvm.String(f.method))
	b.Set("path", planvm.String(f.path))
	b.Set("host", planvm.String(f.host))
	if f.hostPort != f.host {
		b.Set("host_port", planvm.String(f.hostPort))
	}
	b.Set("route", planvm.String(f.route.Name))
	if f.clientID != "" {
		b.Set("client_id", planvm.String(f.clientID))
	}
	if f.hasXM {
		xb := planvm.NewObjectBuilder(2)
		xb.Set("origin", planvm.String(f.xm.Origin))
		if f.xm.Destination != "" {
			xb.Set("destination", planvm.String(f.xm.Destination))
		}
		b.Set("xmatrix", xb.Value())
	}
	switch f.route.Name {
	case matrix.RouteCreateRoom, matrix.RouteInvite:
		invs := make([]planvm.Value, len(f.invitees))
		for i, mxid := range f.invitees {
			invs[i] = planvm.NewObject(
				planvm.KV{Key: "mxid", Value: planvm.String(mxid)},
				planvm.KV{Key: "domain", Value: planvm.String(userDomain(mxid))},
			)
		}
		b.Set("invitees", planvm.NewArray(invs...))
	case matrix.RouteFederationInvite:
		if f.hasInvite {
			b.Set("invite", planvm.NewObject(
				planvm.KV{Key: "inviter", Value: planvm.String(f.inviter)},
				planvm.KV{Key: "invitee", Value: planvm.String(f.invitee)},
				planvm.KV{Key: "inviter_domain", Value: planvm.String(userDomain(f.inviter))},
				planvm.KV{Key: "invitee_domain", Value: planvm.String(userDomain(f.invitee))},
			))
		}
	case matrix.RouteMedia:
		b.Set("media_server", planvm.String(serverDomain(f.route.MediaServer)))
	}
	if expired {
		b.Set("federation_list_expired", boolTrue)
	} else {
		b.Set("federation_list_expired", boolFalse)
	}
	return b.Value()
}

// inputLen is the number of members input sets: the builder is allocated at
// its final size (objects above eight members also get an index map, so
// every member spared counts).
func (s *stream) inputLen() int {
	f := &s.f
	n := 6 // direction, method, path, host, route, federation_list_expired
	if f.hostPort != f.host {
		n++
	}
	if f.clientID != "" {
		n++
	}
	if f.hasXM {
		n++
	}
	switch f.route.Name {
	case matrix.RouteCreateRoom, matrix.RouteInvite, matrix.RouteMedia:
		n++
	case matrix.RouteFederationInvite:
		if f.hasInvite {
			n++
		}
	}
	return n
}

// userDomain is the lower-case host of a user ID's server name: the key of
// the federation list (which lists domains without ports).
func userDomain(mxid string) string {
	_, server, err := matrix.ParseUserID(mxid)
	if err != nil {
		return ""
	}
	return serverDomain(server)
}

func serverDomain(server string) string {
	host, _, err := matrix.ParseServerName(server)
	if err != nil {
		return strings.ToLower(server)
	}
	return strings.ToLower(host)
}
