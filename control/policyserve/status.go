package policyserve

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// status is what the operator sees of the reloads and of the proxies.
type status struct {
	mu       sync.Mutex
	lastAt   time.Time
	lastErr  string
	accepted int
	refused  int
	proxies  map[string]ProxyReport
}

func (st *status) attempted(at time.Time, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lastAt = at
	if err != nil {
		st.lastErr = err.Error()
		st.refused++
		return
	}
	st.lastErr = ""
	st.accepted++
}

// maxProxies bounds the proxies remembered; the one seen longest ago goes first.
const maxProxies = 256

// ProxyReport is the revision a proxy held when it last asked for the policy.
type ProxyReport struct {
	Proxy    string `json:"proxy"`
	Revision string `json:"revision"`
	Shadow   string `json:"shadow,omitempty"`
	// ShadowEvaluated and ShadowDiffer are the proxy's counts for its shadow candidate.
	ShadowEvaluated int64     `json:"shadow_evaluated,omitempty"`
	ShadowDiffer    int64     `json:"shadow_differ,omitempty"`
	SeenAt          time.Time `json:"seen_at"`
}

// ReportHeld records what a proxy (its role and address) held when it asked for the policy: revision,
// shadow candidate and its counts. The internal API calls it on every GET /internal/v1/policy.
func (s *Server) ReportHeld(r ProxyReport) {
	proxy := r.Proxy
	if proxy == "" {
		return
	}
	st := &s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.proxies == nil {
		st.proxies = map[string]ProxyReport{}
	}
	if _, ok := st.proxies[proxy]; !ok && len(st.proxies) >= maxProxies {
		oldest := ""
		for k, v := range st.proxies {
			if oldest == "" || v.SeenAt.Before(st.proxies[oldest].SeenAt) {
				oldest = k
			}
		}
		delete(st.proxies, oldest)
	}
	r.SeenAt = s.cfg.Now()
	st.proxies[proxy] = r
}

// Status is the answer of GET /admin/v1/policy.
type Status struct {
	Revision       string        `json:"revision"`
	BundleRevision string        `json:"bundle_revision,omitempty"`
	Source         string        `json:"source"`
	CompiledAt     time.Time     `json:"compiled_at"`
	Tests          int           `json:"tests"`
	LastReloadAt   time.Time     `json:"last_reload_at"`
	LastError      string        `json:"last_error,omitempty"` // why the last reload was refused
	Accepted       int           `json:"reloads_accepted"`
	Refused        int           `json:"reloads_refused"`
	Proxies        []ProxyReport `json:"proxies"`
	Shadow         *ShadowStatus `json:"shadow,omitempty"`
}

// Status reports the revision in service, the last reload and what each proxy holds.
func (s *Server) Status() Status {
	cur := s.Current()
	out := Status{Proxies: []ProxyReport{}}
	if cur != nil {
		out.Revision, out.BundleRevision, out.Source, out.CompiledAt, out.Tests = cur.Revision, cur.Manifest, cur.Source, cur.CompiledAt, cur.Tests
	}
	st := &s.st
	st.mu.Lock()
	out.LastReloadAt, out.LastError, out.Accepted, out.Refused = st.lastAt, st.lastErr, st.accepted, st.refused
	for _, p := range st.proxies {
		out.Proxies = append(out.Proxies, p)
	}
	st.mu.Unlock()
	sort.Slice(out.Proxies, func(i, j int) bool { return out.Proxies[i].Proxy < out.Proxies[j].Proxy })
	out.Shadow = s.shadowStatus()
	return out
}

// Check compiles and tests the sources as a reload would, without putting the result in service.
func (s *Server) Check(ctx context.Context) (*Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.build(ctx)
}

func (s *Server) registerStatus(r gin.IRouter) {
	r.GET("/admin/v1/policy", func(c *gin.Context) { c.JSON(http.StatusOK, s.Status()) })
	r.POST("/admin/v1/policy/test", func(c *gin.Context) {
		rev, err := s.Check(c.Request.Context())
		if err != nil {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"error": err.Error(), "revision": s.Current().Revision})
			return
		}
		c.JSON(http.StatusOK, gin.H{"revision": rev.Revision, "bundle_revision": rev.Manifest, "tests": rev.Tests,
			"in_service": rev.Revision == s.Current().Revision})
	})
}
