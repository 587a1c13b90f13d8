package filter

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Server-name delegation on egress (docs/filter.md, docs/decisions/filter.md
// F21). A homeserver resolves a server name D by GET
// https://D/.well-known/matrix/server, whose {"m.server": "H[:port]"} sends
// it to host H, a host no federation list names. The egress filter reads
// these answers as they pass (from hosts its policy let through, so from
// federated servers) and records "H serves D" in proxy-wasm shared data,
// which every worker VM of the egress listener sees. A later request to H
// gets the fact input.delegated_from (the servers H serves) and the policy
// decides: H stands for D, and for D only, while D is federated.
//
// Bounds: the table has delegationBuckets shared-data keys, each holding at
// most delegationBucketLen records; a record lives delegationTTL after the
// last answer that named it (48 h, the longest a homeserver may cache a
// well-known answer, so the homeserver never uses a delegation the filter
// has forgotten unless the filter restarted); a full bucket drops the record
// closest to expiry. The answer is read only up to maxWellKnownBody bytes.
const (
	delegationTTL       = 48 * time.Hour
	delegationBuckets   = 256
	delegationBucketLen = 8
	maxWellKnownBody    = 4 << 10
	keyDelegation       = "tim-filter.delegation."
	wellKnownServerPath = "/.well-known/matrix/server"
)

// delegationStream is a stream's share of the delegation table.
type delegationStream struct {
	// consulted: the request's facts include the table, which changes
	// without the memo being cleared, so its decision is not remembered.
	consulted bool
	// from are the servers whose well-known named the request's host
	// (input.delegated_from).
	from []string
	// watch: the request is a well-known lookup whose answer is read;
	// answer is what arrived of it so far.
	watch  bool
	answer []byte
}

// delegationVM is the VM's reused storage of the fact.
type delegationVM struct {
	from *planvm.ArrayBuilder
}

// delegationFacts reads the table for an egress request and marks a
// well-known lookup for its answer. The table is consulted unless the
// request is signed for the host it contacts (the common case, which the
// table cannot change).
func (s *stream) delegationFacts() {
	f := &s.f
	if f.method == "GET" && f.path == wellKnownServerPath {
		s.dl.watch = true
		// The answer must arrive readable: a compressed one (Go's
		// transport asks for gzip unless told otherwise) could not be.
		_ = proxywasm.RemoveHttpRequestHeader("accept-encoding")
	}
	if f.hasXM {
		if d, ok := matrix.ServerDomain(f.destination); ok && d == f.host {
			return
		}
	}
	s.dl.consulted = true
	s.rawKeyed = false
	s.dl.from = delegationsTo(s.dl.from[:0], f.host, s.p.clock)
}

// delegatedFrom is the fact's value in the VM's reused storage.
func (p *plugin) delegatedFrom(from []string) planvm.Value {
	if p.dl.from == nil {
		p.dl.from = planvm.NewArrayBuilder(2)
	}
	a := p.dl.from
	a.Reset()
	for _, d := range from {
		a.Append(planvm.String(d))
	}
	return a.Value()
}

// OnHttpResponseHeaders drops the watch unless the answer is a 200 (a
// refusal the filter answered itself is never one).
func (s *stream) OnHttpResponseHeaders(_ int, endOfStream bool) types.Action {
	if !s.dl.watch {
		return types.ActionContinue
	}
	if st, err := proxywasm.GetHttpResponseHeader(":status"); err != nil || st != "200" || endOfStream {
		s.dl.watch = false
	}
	if ce, err := proxywasm.GetHttpResponseHeader("content-encoding"); err == nil && ce != "" && ce != "identity" {
		s.dl.watch = false
	}
	return types.ActionContinue
}

// OnHttpResponseBody collects the well-known answer as it passes (never
// holding it back) and records the delegation at its end.
func (s *stream) OnHttpResponseBody(size int, endOfStream bool) types.Action {
	if !s.dl.watch {
		return types.ActionContinue
	}
	if size > 0 {
		if len(s.dl.answer)+size > maxWellKnownBody {
			s.dl.watch, s.dl.answer = false, nil
			return types.ActionContinue
		}
		b, err := proxywasm.GetHttpResponseBody(0, size)
		if err != nil {
			s.dl.watch, s.dl.answer = false, nil
			return types.ActionContinue
		}
		s.dl.answer = append(s.dl.answer, b...)
	}
	if endOfStream {
		s.dl.watch = false
		s.recordDelegation(s.dl.answer)
		s.dl.answer = nil
	}
	return types.ActionContinue
}

// recordDelegation records what a well-known answer of the request's host
// says, when it names another host.
func (s *stream) recordDelegation(body []byte) {
	server, ok := matrix.ServerDomain(s.f.hostPort)
	if !ok {
		return
	}
	doc, err := planvm.ParseJSON(body)
	if err != nil {
		return
	}
	v, _ := doc.Get("m.server")
	name, ok := v.AsString()
	if !ok {
		return
	}
	host, ok := matrix.ServerDomain(name)
	if !ok || host == server {
		return
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		// An address would let a peer aim this egress at any address,
		// loopback and internal ones included, without even a DNS name;
		// TI-M peers announce named hosts with certificates.
		return
	}
	if !putDelegation(host, server, s.p.now()) {
		proxywasm.LogWarnf("tim-filter: a server-name delegation could not be recorded")
	}
}

// A bucket's value is a list of records "host\tserver\texpiry\n" (expiry in
// Unix seconds); server names hold neither tabs nor newlines.

func delegationKey(host string) string {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(host); i++ {
		h = (h ^ uint32(host[i])) * 16777619
	}
	return keyDelegation + strconv.Itoa(int(h%delegationBuckets))
}

type delegationRecord struct {
	host, server string
	expiry       int64
}

func parseDelegations(b []byte, out []delegationRecord) []delegationRecord {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := bytes.Split(line, []byte{'\t'})
		if len(f) != 3 {
			continue
		}
		exp, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, delegationRecord{string(f[0]), string(f[1]), exp})
	}
	return out
}

// delegationsTo appends the servers whose current records name host.
func delegationsTo(dst []string, host string, now time.Time) []string {
	b, _, err := proxywasm.GetSharedData(delegationKey(host))
	if err != nil || len(b) == 0 {
		return dst
	}
	for _, r := range parseDelegations(b, nil) {
		if r.host == host && r.expiry > now.Unix() {
			dst = append(dst, r.server)
		}
	}
	return dst
}

// putDelegation records that host serves server until now+delegationTTL,
// with compare-and-swap against the other VMs' writes; it reports whether
// the record is in the table.
func putDelegation(host, server string, now time.Time) bool {
	key := delegationKey(host)
	exp := now.Add(delegationTTL).Unix()
	for try := 0; try < 4; try++ {
		old, cas, err := proxywasm.GetSharedData(key)
		if err != nil && err != types.ErrorStatusNotFound {
			return false
		}
		kept := []delegationRecord{{host, server, exp}}
		for _, r := range parseDelegations(old, nil) {
			if r.expiry > now.Unix() && (r.host != host || r.server != server) {
				kept = append(kept, r)
			}
		}
		for len(kept) > delegationBucketLen {
			// Drop the record closest to expiry (never the new one, which
			// expires last).
			min := 1
			for i := 2; i < len(kept); i++ {
				if kept[i].expiry < kept[min].expiry {
					min = i
				}
			}
			kept = append(kept[:min], kept[min+1:]...)
		}
		var v []byte
		for _, r := range kept {
			v = append(v, r.host...)
			v = append(v, '\t')
			v = append(v, r.server...)
			v = append(v, '\t')
			v = strconv.AppendInt(v, r.expiry, 10)
			v = append(v, '\n')
		}
		if err := proxywasm.SetSharedData(key, v, cas); err != nil {
			if err == types.ErrorStatusCasMismatch {
				continue
			}
			return false
		}
		// A key's first write cannot be conditional (cas 0 writes
		// unconditionally): read back that no other VM's first write
		// replaced this one.
		for _, s := range delegationsTo(nil, host, now) {
			if s == server {
				return true
			}
		}
	}
	return false
}
