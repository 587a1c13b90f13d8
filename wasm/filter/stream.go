package filter

import (
	"errors"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/timfd/fachdienst/wasm/internal/word"
	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

type streamState uint8

const (
	stateHeaders     streamState = iota
	stateWaitBody                // paused until the whole body is there
	stateWaitList                // paused until a list fetch ends
	stateWaitCallout             // paused until the control plane answers
	stateDone                    // decided
	stateEnded                   // the request is over; the stream waits for reuse
)

// stream is one HTTP request.
type stream struct {
	types.DefaultHttpContext
	id    uint32
	p     *plugin
	state streamState
	// async is true while the stream is not inside one of its own request
	// callbacks: an outcome must then be applied by resuming or answering
	// explicitly instead of through the callback's return value.
	async bool
	f     facts
	dec   decision
	// bodyBytes is the size of the body the filter read (yield budget).
	bodyBytes int
	// rawKeyed: the decision is remembered under the header key (memo.raw)
	// with hash rawHash; see OnHttpRequestHeaders.
	rawKeyed bool
	rawHash  uint64
	// headerBuf and bodyBuf hold the request's header map and body as the
	// host wrote them; the facts' strings are views of them. They stay with
	// the stream object from request to request (see request_wasm.go) and
	// are wiped when the request ends.
	headerBuf, bodyBuf []byte
	// dl is the egress request's share of the delegation table.
	dl delegationStream
}

// facts are what Go learns from the request; see docs/policy-contract.md.
type facts struct {
	method, path, host, hostPort string
	// segs is the path split into segments, which route and the path's
	// facts are read from (matrix.Path).
	segs     matrix.Path
	route    matrix.Route
	clientID string
	// origin and destination of the X-Matrix authorization (hasXM).
	origin, destination string
	hasXM               bool
	invitees            []string
	// thirdParty: the request invites by e-mail or phone number.
	thirdParty       bool
	inviter, invitee string
	hasInvite        bool
	// servers are the domains a join or knock goes through: the
	// server_name and via parameters and the room's own domain.
	servers []string
}

// decision is the policy's answer.
type decision struct {
	allow   bool
	status  int
	body    []byte // the refusal's JSON; nil on allow or when the policy gave no object
	ask     string
	reason  string
	check   int
	refetch bool
	log     bool // an allow that writes a decision-log line
}

func (s *stream) OnHttpStreamDone() {
	s.p.yieldAfter(s)
	s.p.release(s)
}

func (s *stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	p := s.p
	if p.cfg == nil {
		return types.ActionContinue
	}
	hs, err := requestHeaders(p.hdrs[:0], &s.headerBuf)
	if err != nil {
		return s.reject(500, "M_UNKNOWN", "The request could not be read", "headers unreadable")
	}
	if cap(hs) <= maxReusedHeaders {
		// Kept as storage for the next request; its views point into this
		// stream's header buffer, wiped when the request ends, and are
		// never read after it.
		p.hdrs = hs
	}
	var hv headerValues
	hv.collect(hs)
	// A request whose header values equal an earlier one's gets its decision
	// without its facts being read (memo.rawKeyOf says which qualify); not
	// while a shadow candidate is evaluated, which needs the facts.
	if p.ready() && p.shadow == nil {
		expired := p.expired(p.clock)
		if key, ok := p.memo.rawKeyOf(&hv, expired); ok {
			d, h, hit := p.memo.lookup(key, nil)
			if hit {
				if memoAudit {
					s.auditRawHit(&hv, h, expired, d)
				}
				if !d.allow || d.log { // a logged decision logs the facts
					if err := s.f.fromValues(&hv, p.router, &p.hosts); err != nil {
						return s.rejectPath(err)
					}
				}
				return s.apply(d, false, expired)
			}
			s.rawKeyed, s.rawHash = true, h
		}
	}
	if err := s.f.fromValues(&hv, p.router, &p.hosts); err != nil {
		return s.rejectPath(err)
	}
	if !p.ready() {
		return s.notReady()
	}
	if s.f.route.Name == matrix.RouteJoin {
		// Its facts include the query, which the header key leaves out.
		s.rawKeyed = false
		var err error
		if s.f.servers, err = joinServers(s.f.servers[:0], &s.f.segs, s.f.route.RoomID); err != nil {
			return s.reject(400, "M_INVALID_PARAM", "Invalid server name in the request", "invalid join server")
		}
	}
	if p.cfg.Direction == "egress" {
		s.delegationFacts()
	}
	if s.f.route.NeedsBody {
		// The body's facts are not in the header key.
		s.rawKeyed = false
		if endOfStream {
			return s.withBody(nil)
		}
		// The headers go on and the body callback pauses until the body is
		// complete: Envoy withholds the body from a filter whose headers
		// callback paused (proxy-wasm-cpp-host turns that into
		// StopAllIterationAndWatermark). The upstream gets the headers but
		// no byte of the body before the decision; a refusal's local reply
		// resets it.
		s.state = stateWaitBody
		return types.ActionContinue
	}
	return s.decide(false)
}

func (s *stream) OnHttpRequestBody(size int, endOfStream bool) types.Action {
	switch s.state {
	case stateWaitBody:
	case stateWaitList, stateWaitCallout:
		// Hold the body while the decision is pending; bounded like any body.
		if size > s.p.cfg.MaxBodyBytes {
			return s.reject(413, "M_TOO_LARGE", "Request body too large", "body over the cap")
		}
		return types.ActionPause
	default:
		return types.ActionContinue
	}
	if size > s.p.cfg.MaxBodyBytes {
		return s.reject(413, "M_TOO_LARGE", "Request body too large", "body over the cap")
	}
	if !endOfStream {
		return types.ActionPause
	}
	var body []byte
	if size > 0 {
		b, err := requestBody(size, &s.bodyBuf)
		if err != nil {
			return s.reject(500, "M_UNKNOWN", "The request could not be read", "body unreadable: "+err.Error()+" size "+itoa(size))
		}
		body = b
		s.bodyBytes = size
	}
	return s.withBody(body)
}

// maxReusedHeaders bounds the pairs storage kept between requests.
const maxReusedHeaders = 128

// withBody reads the facts of the body and decides.
func (s *stream) withBody(body []byte) types.Action {
	err := s.f.fromBody(body)
	switch {
	case errors.Is(err, matrix.ErrNotJSON):
		return s.reject(400, "M_NOT_JSON", "Content not JSON.", "body is not JSON")
	case err != nil:
		return s.reject(400, "M_INVALID_PARAM", "Invalid user ID or field in the request body", "invalid body field")
	}
	s.state = stateHeaders
	return s.decide(false)
}

// fromBody reads the facts of the body of a route that needs it.
func (f *facts) fromBody(body []byte) error {
	var err error
	switch f.route.Name {
	case matrix.RouteFederationInvite:
		f.inviter, f.invitee, err = matrix.FederationInvite(f.route, body)
		f.hasInvite = err == nil
	default:
		f.invitees, f.thirdParty, err = matrix.Invitees(f.route, body)
		if f.route.Member && len(f.invitees) == 0 && err == nil {
			// A membership event that invites nobody (leave, ban, a
			// display name change) is an ordinary state event.
			f.route.Name = matrix.RouteClientOther
		}
	}
	return err
}

// decide evaluates the policy and applies the decision. refetched is true
// on the second evaluation after a list fetch.
func (s *stream) decide(refetched bool) types.Action {
	p := s.p
	// The list's age is judged by the last clock reading (at the latest the
	// last tick, at most a tick period old): reading the clock costs two
	// host calls per request. The policy itself reads no clock; should it
	// call time.now_ns, the plan VM reads the clock for that evaluation.
	expired := p.expired(p.clock)
	// Remembered under the facts key, and under the header key too when the
	// request has one (looked up and missed just now), so that it is
	// answered before its facts are read when it comes again. A second
	// evaluation after a list fetch is not remembered: the header key's
	// buffer holds another request's by then.
	var key *memoKey
	var h uint64
	remember := false
	if !refetched && !s.dl.consulted {
		key, remember = p.memo.keyOf(&s.f, expired)
	}
	if remember {
		var d *decision
		var ok bool
		if d, h, ok = p.memo.lookup(key, p.memo.opaque); ok {
			if memoAudit {
				s.auditHit(h, expired, d)
			}
			if s.rawKeyed {
				p.memo.store(p.memo.rawKey(), s.rawHash, *d, nil)
			}
			return s.apply(d, refetched, expired)
		}
	}
	if !refetched {
		p.memo.stats.misses++
	}
	in := s.input(expired)
	var res planvm.Value
	var ok bool
	var err error
	if remember {
		res, ok, err = p.eval.Eval(Entrypoint, in, p.data, planvm.Observe)
	} else {
		res, ok, err = p.eval.Eval(Entrypoint, in, p.data)
	}
	if err != nil || !ok {
		p.m.count(checkDefault, outcomeError)
		why := "policy undefined"
		if err != nil {
			why = "policy error: " + err.Error()
		}
		return s.failClosed(checkDefault, 500, "M_UNKNOWN", "The request could not be checked", why)
	}
	d, ok := parseDecision(res)
	if !ok {
		p.m.count(checkDefault, outcomeError)
		return s.failClosed(checkDefault, 500, "M_UNKNOWN", "The request could not be checked", "malformed decision")
	}
	if remember && !p.eval.DependsOnTime() {
		kept := s.detach(d)
		obs, observed := p.eval.Observations()
		if !observed {
			// Remembered for exactly these opaque strings.
			p.exact = planvm.Exact(p.exact[:0], p.memo.opaque)
			obs = p.exact
		}
		p.memo.store(key, h, kept, obs)
		if s.rawKeyed {
			if slot := p.memo.store(p.memo.rawKey(), s.rawHash, kept, nil); slot != nil && memoAudit {
				slot.input = inputJSON(in)
			}
		}
	}
	return s.apply(&d, refetched, expired)
}

// detach returns d with its strings copied where they are views of the
// stream's buffers, for the memo, which outlives the request: a policy may
// pass a string of the input through to reason or ask, and the buffers are
// wiped and reused once the request ends. Strings of the policy's own, the
// usual case, are kept as they are.
func (s *stream) detach(d decision) decision {
	d.reason, d.ask = s.own(d.reason), s.own(d.ask)
	return d
}

func (s *stream) own(v string) string {
	if within(v, s.headerBuf) || within(v, s.bodyBuf) {
		return strings.Clone(v)
	}
	return v
}

// within reports whether v's bytes lie in b's storage.
func within(v string, b []byte) bool {
	if len(v) == 0 || cap(b) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(v))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p < lo+uintptr(cap(b))
}

// apply carries out a decision (d may be the memo's: it is read at once and
// copied only when the stream keeps it).
func (s *stream) apply(d *decision, refetched, expired bool) types.Action {
	p := s.p
	// A shadow candidate is compared on the evaluation that decides: not on one that waits for a
	// list refetch and is evaluated again.
	if d.allow {
		s.compareShadow(d, expired)
		p.m.count(d.check, outcomeAllowed)
		if d.log {
			p.logDecision(s, d.check, d.status, d.reason, "allow-logged")
		}
		return s.pass()
	}
	s.dec = *d
	d = &s.dec
	switch {
	case d.ask == "invite-permission":
		s.compareShadow(d, expired)
		return s.askInvite()
	case d.ask != "":
		s.compareShadow(d, expired)
		p.m.count(d.check, outcomeError)
		return s.failClosed(d.check, d.status, "", "", "unknown ask "+d.ask)
	case d.refetch && !refetched && !expired:
		if p.triggerRefetch(p.now()) {
			p.waiters = append(p.waiters, waiter{s, s.id})
			s.state = stateWaitList
			return s.wait()
		}
	}
	s.compareShadow(d, expired)
	return s.deny(d.check, d.status, d.body, d.reason)
}

// triggerRefetch starts (or joins) a list fetch for a missing domain, at most
// once per refetch interval. It reports whether the caller may wait for it.
func (p *plugin) triggerRefetch(now time.Time) bool {
	if p.listFetch.running(now) {
		return true
	}
	if !p.lastRefetch.IsZero() && now.Sub(p.lastRefetch) < p.cfg.RefetchMinInterval {
		return false
	}
	p.lastRefetch = now
	return p.fetchList(now)
}

// askInvite asks the control plane whether the invite may pass (stages 2
// and 3); the stream waits for the answer.
func (s *stream) askInvite() types.Action {
	p := s.p
	if !s.f.hasInvite {
		p.m.count(checkInvite, outcomeError)
		return s.failClosed(checkInvite, s.dec.status, "", "", "invite-permission without invite facts")
	}
	body := inviteRequestBody(s.f.inviter, s.f.invitee)
	h := p.calloutHeaders("POST", pathInvitePermission)
	h = append(h, [2]string{"content-type", "application/json"})
	id := s.id
	onResponse := func(_, bodySize, _ int) {
		if s.id == id {
			s.onInviteResponse(bodySize)
		}
	}
	if _, err := proxywasm.DispatchHttpCall(p.cfg.Cluster, h, body, nil, p.timeoutMS(), onResponse); err != nil {
		p.m.count(checkInvite, outcomeError)
		return s.failClosed(checkInvite, s.dec.status, "", "", "invite-permission call failed: "+err.Error())
	}
	s.state = stateWaitCallout
	return s.wait()
}

func (s *stream) onInviteResponse(bodySize int) {
	defer runtime.Gosched()
	if s.state != stateWaitCallout {
		return
	}
	s.async = true
	p := s.p
	status := responseStatus()
	allow, answered := false, false
	if status == 200 {
		if b, err := responseBody(bodySize); err == nil {
			allow, answered = parseInviteAnswer(b)
		}
	}
	switch {
	case !answered:
		p.m.count(checkInvite, outcomeError)
		why := "control plane did not answer"
		if status != 0 {
			why = "control plane answered " + itoa(status)
		}
		s.failClosed(checkInvite, s.dec.status, "", "", "invite-permission: "+why)
	case allow:
		p.m.count(checkInvite, outcomeAllowed)
		s.pass()
	default:
		s.deny(checkInvite, s.dec.status, s.dec.body, "invite refused by the control plane")
	}
}

// wait pauses the stream until an asynchronous answer applies an outcome.
func (s *stream) wait() types.Action {
	return types.ActionPause
}

// pass lets the request through.
func (s *stream) pass() types.Action {
	wasPaused := s.async
	s.state = stateDone
	if wasPaused {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogErrorf("tim-filter: cannot resume a request: %v", err)
		}
	}
	return types.ActionContinue
}

// deny answers with the policy's status and body, or only logs in dry-run.
func (s *stream) deny(check, status int, body []byte, reason string) types.Action {
	if body == nil || status < 400 || status > 599 {
		s.p.m.count(check, outcomeError)
		return s.failClosed(check, 500, "M_UNKNOWN", "The request could not be checked", "malformed deny decision")
	}
	return s.answer(check, status, body, reason)
}

// reject answers a request Go refuses before the policy runs.
func (s *stream) reject(status int, errcode, msg, reason string) types.Action {
	return s.answer(checkRequest, status, errorBody(errcode, msg), reason)
}

// rejectPath answers a path that is not canonical (matrix.ParsePath):
// 400 M_UNRECOGNIZED, since no homeserver routes it to an endpoint.
func (s *stream) rejectPath(err error) types.Action {
	msg := "The request path is not canonical"
	switch err {
	case matrix.ErrBadEscape:
		msg = "Invalid percent-encoding in the request path"
	case matrix.ErrDotSegment:
		msg = "Dot segments are not allowed in the request path"
	case matrix.ErrEmptySegment:
		msg = "Empty segments are not allowed in the request path"
	}
	return s.reject(400, "M_UNRECOGNIZED", msg, "path not canonical: "+err.Error())
}

// maxJoinServers bounds the servers a join names.
const maxJoinServers = 16

// joinServers returns the domains a join or knock may go through: every
// server_name and via parameter, and the domain of the room ID or alias
// (homeservers try it when no server is named), lower-cased without port.
// A parameter that is not a server name is an error.
func joinServers(dst []string, p *matrix.Path, room string) ([]string, error) {
	start := len(dst)
	var err error
	if dst, err = matrix.QueryValues(dst, p.Query, "server_name"); err != nil {
		return nil, err
	}
	if dst, err = matrix.QueryValues(dst, p.Query, "via"); err != nil {
		return nil, err
	}
	if len(dst)-start > maxJoinServers {
		return nil, errTooManyServers
	}
	for i := start; i < len(dst); i++ {
		d, ok := matrix.ServerDomain(dst[i])
		if !ok {
			return nil, matrix.ErrBadServerName
		}
		dst[i] = d
	}
	if i := strings.IndexByte(room, ':'); i >= 0 {
		if d, ok := matrix.ServerDomain(room[i+1:]); ok {
			dst = append(dst, d)
		}
	}
	return dst, nil
}

var errTooManyServers = errors.New("too many servers")

// notReady answers while there is no valid policy or list (fail closed).
//
// Until then every request is refused alike, so one decision-log line a second
// stands for all of them (with how many it stands for): a start or an outage
// of the control plane stays readable. The metric counts each one.
func (s *stream) notReady() types.Action {
	p := s.p
	p.m.notReady.Increment(1)
	body := errorBody("M_UNAVAILABLE", "The messenger proxy has no valid policy or federation list yet")
	if now := p.now(); now.Sub(p.notReadyLogged) >= time.Second {
		reason := "not ready"
		if p.notReadyQuiet > 0 {
			reason += " (and " + itoa(p.notReadyQuiet) + " more since the last line)"
		}
		p.notReadyLogged, p.notReadyQuiet = now, 0
		return s.answer(checkDefault, 503, body, reason)
	}
	p.notReadyQuiet++
	return s.respond(checkDefault, 503, body, decisionID())
}

// failClosed denies because a check could not decide. With status 0 or an
// empty errcode it uses the decision's own refusal when there is one.
func (s *stream) failClosed(check, status int, errcode, msg, reason string) types.Action {
	if errcode == "" {
		if s.dec.body != nil && status >= 400 && status <= 599 {
			return s.answer(check, status, s.dec.body, reason)
		}
		status, errcode, msg = 403, "M_FORBIDDEN", "The request could not be checked"
	}
	return s.answer(check, status, errorBody(errcode, msg), reason)
}

// answer sends the local response (or, in dry-run, logs and passes).
func (s *stream) answer(check, status int, body []byte, reason string) types.Action {
	return s.respond(check, status, body, s.p.logDenial(s, check, status, reason))
}

// respond is answer once the decision is logged under id (or left out).
func (s *stream) respond(check, status int, body []byte, id string) types.Action {
	p := s.p
	if p.cfg.DryRun {
		p.m.count(check, outcomeDryRun)
		return s.pass()
	}
	p.m.count(check, outcomeDenied)
	s.state = stateDone
	err := proxywasm.SendHttpResponse(uint32(status), [][2]string{
		{"content-type", "application/json"},
		{"x-tim-decision-id", id},
	}, body, -1)
	if err != nil {
		proxywasm.LogErrorf("tim-filter: cannot send the local response: %v", err)
	}
	return types.ActionPause
}

func parseDecision(v planvm.Value) (decision, bool) {
	d := decision{check: checkDefault}
	if v.Kind() != planvm.KindObject {
		return d, false
	}
	hasAllow := false
	var body planvm.Value
	// One pass over the members: a lookup per member costs more in Wasm.
	for i, n := 0, v.NumMembers(); i < n; i++ {
		k, m := v.Member(i)
		key, _ := k.AsString()
		switch key {
		case "allow":
			if d.allow, hasAllow = m.AsBool(); !hasAllow {
				return d, false
			}
		case "status":
			st, _ := m.AsInt()
			d.status = int(st)
		case "body":
			body = m
		case "ask":
			d.ask, _ = m.AsString()
		case "reason":
			d.reason, _ = m.AsString()
		case "check":
			if name, ok := m.AsString(); ok {
				d.check = checkIndex(name)
			}
		case "refetch":
			d.refetch, _ = m.AsBool()
		case "log":
			d.log, _ = m.AsBool()
		}
	}
	if !hasAllow {
		return d, false
	}
	// The result is a view into the evaluator's arena, overwritten by the next evaluation; a refusal
	// may be answered later (after a callout or a list fetch), so its body is serialised now.
	if !d.allow && body.Kind() == planvm.KindObject {
		if b, err := planvm.ToJSON(body); err == nil {
			d.body = b
		}
	}
	return d, true
}

// hostCache keeps the last :authority and the names fromValues made of it:
// nearly every request of a listener names the same host (the provider's
// own; the egress's peers come in runs), and lower-casing and parsing it
// again was a good part of the facts of a request that the memo answers by
// its facts key. It keeps copies: the request's buffers are wiped when the
// request ends. A nil cache computes every time.
type hostCache struct{ raw, hostPort, host string }

// names returns the host[:port] lower-cased and its domain (port removed).
func (c *hostCache) names(raw string) (hostPort, host string) {
	if c != nil && len(raw) == len(c.raw) && word.Equal(raw, c.raw) {
		return c.hostPort, c.host
	}
	if c != nil {
		raw = strings.Clone(raw)
	}
	hostPort = strings.ToLower(raw)
	if d, ok := matrix.ServerDomain(hostPort); ok {
		host = d
	} else {
		host = stripPort(hostPort)
	}
	if c != nil {
		c.raw, c.hostPort, c.host = raw, hostPort, host
	}
	return hostPort, host
}

// stripPort removes the port of a host[:port] (IPv6 literals keep their
// brackets).
func stripPort(hp string) string {
	if strings.HasPrefix(hp, "[") {
		if i := strings.IndexByte(hp, ']'); i >= 0 {
			return hp[:i+1]
		}
		return hp
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i]
	}
	return hp
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// headerValues are the request header values the facts come from, and the
// X-Matrix authorization read from the Authorization values (the only facts
// those give: a Bearer token never leaves collect).
type headerValues struct {
	// path is the :path without its query; rawPath the whole of it.
	method, path, rawPath, hostPort, ua, timUA, tiUA string
	// xmatrix is set when an Authorization value names the X-Matrix scheme;
	// origin and destination are what they say when they parse (hasXM).
	xmatrix             bool
	hasXM               bool
	origin, destination string
}

// collect reads the header values; the path loses its query.
func (r *headerValues) collect(hs [][2]string) {
	var buf [2]string
	authz := buf[:0]
	// By index: a range loop would copy each pair, 32 bytes and so a
	// bulk-memory call in Wasm.
	for i := range hs {
		// By length first, then a word comparison: a switch on the names
		// calls the runtime's byte-by-byte comparison for all names longer
		// than six bytes, several times per header in Wasm.
		k, v := hs[i][0], hs[i][1]
		switch len(k) {
		case len(":path"):
			if k == ":path" {
				r.path = v
			}
		case len(":method"):
			if word.Short(k, ":method") {
				r.method = v
			}
		case len(":authority"), len("host"):
			if (word.Short(k, ":authority") || k == "host") && r.hostPort == "" {
				r.hostPort = v
			} else if word.Short(k, "user-agent") {
				r.ua = v
			}
		case len("authorization"):
			if word.Short(k, "authorization") {
				authz = append(authz, v)
				if matrix.HasXMatrixScheme(v) {
					r.xmatrix = true
				}
			} else if word.Short(k, "ti-user-agent") {
				r.tiUA = v
			}
		case len("x-tim-user-agent"):
			if word.Short(k, "x-tim-user-agent") {
				r.timUA = v
			}
		}
	}
	r.rawPath = r.path
	if i := strings.IndexByte(r.path, '?'); i >= 0 {
		r.path = r.path[:i]
	}
	if r.xmatrix {
		var err error
		r.origin, r.destination, err = matrix.XMatrixOrigin(authz)
		r.hasXM = err == nil
	}
}

// fromValues derives the facts from the header values: a function of them
// alone and of the endpoint table (which clears the memo when it changes;
// see memo.rawKeyOf), except the join servers of the query, read only for
// joins, which the header key never holds.
func (f *facts) fromValues(r *headerValues, router *matrix.Router, hosts *hostCache) error {
	f.method = strings.ToUpper(r.method)
	f.hostPort, f.host = hosts.names(r.hostPort)
	if f.method == "CONNECT" && r.rawPath == "" {
		// A tunnel (egress): no path, only the host it connects to.
		r.rawPath = "/"
	}
	if err := f.segs.ParsePath(r.rawPath); err != nil {
		return err
	}
	f.path = f.segs.Raw
	f.route = router.Route(f.method, &f.segs)
	if id, ok := matrix.ClientID(r.ua, r.timUA, r.tiUA); ok {
		f.clientID = id
	}
	f.origin, f.destination, f.hasXM = r.origin, r.destination, r.hasXM
	return nil
}
