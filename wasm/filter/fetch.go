package filter

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/timfd/fachdienst/wasm/fedlist"
)

// Shared-data keys. The list and the policy are stored as fetched (the
// compact JWS, the policy document); every VM verifies or loads them itself,
// so a VM never trusts another VM's parse.
const (
	keyListJWS     = "tim.fedlist.jws"
	keyListMeta    = "tim.fedlist.meta" // version and confirmation time, 16 bytes
	keyListLease   = "tim.fedlist.lease"
	keyPolicy      = "tim.policy.doc"
	keyPolicyRev   = "tim.policy.rev" // revision of keyPolicy, written after it
	keyPolicyLease = "tim.policy.lease"
)

// maxResponseBytes bounds what the filter reads of a control-plane answer
// (a federation list of 100 000 domains is about 12 MB).
const maxResponseBytes = 64 << 20

func (p *plugin) calloutHeaders(method, path string) [][2]string {
	return [][2]string{
		{":method", method},
		{":path", path},
		{":authority", p.cfg.Authority},
		{p.cfg.CredentialHeader, p.cfg.Credential},
	}
}

func (p *plugin) timeoutMS() uint32 { return uint32(p.cfg.CalloutTimeout / time.Millisecond) }

// lease is how long a fetch may run before another one may start.
func (p *plugin) lease() time.Duration { return p.cfg.CalloutTimeout + time.Second }

// acquire takes the cross-VM lease under key: only one VM fetches at a time.
func (p *plugin) acquire(key string, now time.Time) bool {
	b, cas, err := proxywasm.GetSharedData(key)
	if err == nil && len(b) == 8 && now.UnixNano() < int64(binary.BigEndian.Uint64(b)) {
		return false
	}
	if err != nil {
		cas = 0
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(now.Add(p.lease()).UnixNano()))
	return proxywasm.SetSharedData(key, v[:], cas) == nil
}

// setShared writes a shared value unconditionally (last writer wins), using
// the current cas as hosts differ in how they treat cas 0.
func setShared(key string, data []byte) error {
	_, cas, err := proxywasm.GetSharedData(key)
	if err != nil {
		cas = 0
	}
	return proxywasm.SetSharedData(key, data, cas)
}

func release(key string) {
	if _, cas, err := proxywasm.GetSharedData(key); err == nil {
		_ = proxywasm.SetSharedData(key, make([]byte, 8), cas)
	}
}

// fetchList starts GET /internal/v1/federation-list unless one is running.
// It reports whether a fetch is running afterwards.
func (p *plugin) fetchList(now time.Time) bool {
	if p.listFetch.running(now) {
		return true
	}
	p.listFetch.last = now
	if !p.acquire(keyListLease, now) {
		// Another VM is fetching; its result arrives through shared data.
		return false
	}
	path := pathFederationList
	if p.list != nil {
		path += "?version=" + strconv.FormatInt(p.list.list.Version, 10)
	}
	_, err := proxywasm.DispatchHttpCall(p.cfg.Cluster, p.calloutHeaders("GET", path), nil, nil, p.timeoutMS(), p.onListResponse)
	if err != nil {
		release(keyListLease)
		p.m.listErrors.Increment(1)
		proxywasm.LogErrorf("tim-filter: cannot request the federation list: %v", err)
		return false
	}
	p.listFetch.until = now.Add(p.lease())
	return true
}

func (p *plugin) onListResponse(_, bodySize, _ int) {
	defer runtime.Gosched()
	now := p.now()
	p.listFetch.until = time.Time{}
	defer release(keyListLease)
	defer p.releaseWaiters()
	status := responseStatus()
	switch status {
	case 200:
		body, err := responseBody(bodySize)
		if err != nil {
			p.m.listErrors.Increment(1)
			proxywasm.LogErrorf("tim-filter: federation list response unreadable: %v", err)
			return
		}
		p.acceptList(body, now)
	case 204:
		if p.list != nil {
			p.list.confirmedAt = now
			p.publishListMeta(p.list.list.Version, now)
			p.checkExpiry(now)
		}
	default:
		p.m.listErrors.Increment(1)
		if status == 0 {
			proxywasm.LogErrorf("tim-filter: federation list fetch failed (no answer from cluster %s)", p.cfg.Cluster)
		} else {
			proxywasm.LogErrorf("tim-filter: federation list fetch answered %d", status)
		}
	}
}

// acceptList verifies a fetched list and installs and shares it; a list that
// fails verification or is older than the current one is rejected and the
// last good list stays.
func (p *plugin) acceptList(jws []byte, now time.Time) {
	l, err := fedlist.Verify(jws, p.cfg.Trust, now)
	if err != nil {
		p.m.listRejected.Increment(1)
		proxywasm.LogErrorf("tim-filter: federation list rejected, keeping the last good one: %v", err)
		return
	}
	if p.list != nil && l.Version < p.list.list.Version {
		p.m.listRejected.Increment(1)
		proxywasm.LogErrorf("tim-filter: federation list version %d rejected: older than the installed version %d", l.Version, p.list.list.Version)
		return
	}
	if p.list != nil && l.Version == p.list.list.Version {
		p.list.confirmedAt = now
	} else {
		p.installList(l, jws, now, "control plane")
		if err := setShared(keyListJWS, jws); err != nil {
			proxywasm.LogWarnf("tim-filter: cannot share the federation list: %v", err)
		}
	}
	p.publishListMeta(l.Version, now)
}

// publishListMeta shares version and confirmation time; it never moves
// either backwards (CAS loop, bounded).
func (p *plugin) publishListMeta(version int64, confirmed time.Time) {
	for i := 0; i < 4; i++ {
		old, cas, err := proxywasm.GetSharedData(keyListMeta)
		if err == nil && len(old) == 16 {
			ov, oc := int64(binary.BigEndian.Uint64(old)), int64(binary.BigEndian.Uint64(old[8:]))
			if ov > version || (ov == version && oc >= confirmed.UnixNano()) {
				return
			}
		} else {
			cas = 0
		}
		var v [16]byte
		binary.BigEndian.PutUint64(v[:], uint64(version))
		binary.BigEndian.PutUint64(v[8:], uint64(confirmed.UnixNano()))
		if proxywasm.SetSharedData(keyListMeta, v[:], cas) == nil {
			return
		}
	}
}

// syncShared adopts a newer list or policy that another VM fetched.
func (p *plugin) syncShared() {
	now := p.now()
	if meta, _, err := proxywasm.GetSharedData(keyListMeta); err == nil && len(meta) == 16 {
		version := int64(binary.BigEndian.Uint64(meta))
		confirmed := time.Unix(0, int64(binary.BigEndian.Uint64(meta[8:])))
		switch {
		case p.list == nil || version > p.list.list.Version:
			if jws, _, err := proxywasm.GetSharedData(keyListJWS); err == nil {
				if l, err := fedlist.Verify(jws, p.cfg.Trust, now); err == nil && (p.list == nil || l.Version > p.list.list.Version) {
					p.installList(l, jws, confirmed, "shared data")
				}
			}
		case version == p.list.list.Version && confirmed.After(p.list.confirmedAt):
			p.list.confirmedAt = confirmed
		}
	}
	// The small revision key is read on every tick; the document only when
	// its revision is new. The document is written first, so a new revision
	// finds its document (or, in the moment between the writes, an older
	// document, which the revision check below ignores until the next tick).
	if rev, _, err := proxywasm.GetSharedData(keyPolicyRev); err == nil && len(rev) > 0 &&
		(p.policy == nil || string(rev) != p.policy.sharedKey()) {
		if doc, _, err := proxywasm.GetSharedData(keyPolicy); err == nil {
			if pol, err := ParsePolicy(doc); err == nil && pol.Revision != "" && (p.policy == nil || pol.sharedKey() != p.policy.sharedKey()) {
				p.installPolicy(pol, "shared data")
			}
		}
	}
}

// fetchPolicy starts GET /internal/v1/policy unless one is running.
func (p *plugin) fetchPolicy(now time.Time) {
	if p.policyFetch.running(now) {
		return
	}
	p.policyFetch.last = now
	if !p.acquire(keyPolicyLease, now) {
		return
	}
	path := pathPolicy
	if p.policy != nil && p.policy.Revision != "" {
		path += "?revision=" + queryEscape(p.policy.Revision) + p.shadowQuery()
	}
	// The role tells the operator which proxy holds which revision (tim-control policy status).
	hdrs := append(p.calloutHeaders("GET", path), [2]string{"x-tim-proxy", p.cfg.Direction})
	_, err := proxywasm.DispatchHttpCall(p.cfg.Cluster, hdrs, nil, nil, p.timeoutMS(), p.onPolicyResponse)
	if err != nil {
		release(keyPolicyLease)
		p.m.policyErrors.Increment(1)
		proxywasm.LogErrorf("tim-filter: cannot request the policy: %v", err)
		return
	}
	p.policyFetch.until = now.Add(p.lease())
}

func (p *plugin) onPolicyResponse(_, bodySize, _ int) {
	defer runtime.Gosched()
	p.policyFetch.until = time.Time{}
	defer release(keyPolicyLease)
	switch status := responseStatus(); status {
	case 200:
		body, err := responseBody(bodySize)
		if err != nil {
			p.m.policyErrors.Increment(1)
			proxywasm.LogErrorf("tim-filter: policy response unreadable: %v", err)
			return
		}
		pol, err := ParsePolicy(body)
		if err != nil {
			p.m.policyRejected.Increment(1)
			proxywasm.LogErrorf("tim-filter: policy rejected, keeping the current one: %v", err)
			return
		}
		p.installPolicy(pol, "control plane")
		if err := setShared(keyPolicy, body); err != nil {
			proxywasm.LogWarnf("tim-filter: cannot share the policy: %v", err)
		} else if err := setShared(keyPolicyRev, []byte(pol.sharedKey())); err != nil {
			proxywasm.LogWarnf("tim-filter: cannot share the policy revision: %v", err)
		}
	case 204:
	default:
		p.m.policyErrors.Increment(1)
		if status == 0 {
			proxywasm.LogErrorf("tim-filter: policy fetch failed (no answer from cluster %s)", p.cfg.Cluster)
		} else {
			proxywasm.LogErrorf("tim-filter: policy fetch answered %d", status)
		}
	}
}

// responseStatus is the :status of a callout response, 0 when the call
// failed (Envoy then delivers no headers).
func responseStatus() int {
	v, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		return 0
	}
	for _, h := range v {
		if h[0] == ":status" {
			n, err := strconv.Atoi(h[1])
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

func responseBody(size int) ([]byte, error) {
	if size <= 0 {
		return nil, errors.New("empty body")
	}
	if size > maxResponseBytes {
		return nil, errors.New("body too large")
	}
	return proxywasm.GetHttpCallResponseBody(0, size)
}

func queryEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}
