package policyserve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// A shadow candidate is a second revision the proxies evaluate beside the one in service, on the same
// requests, without acting on it: they count (and log, hashed) every request whose decision would
// differ. The operator uploads it as an OPA bundle (`tim-control policy shadow DIR`), reads what the
// proxies report, then promotes it into service or drops it.

// ShadowStatus is the candidate and what the proxies report of it.
type ShadowStatus struct {
	Revision       string    `json:"revision"`
	BundleRevision string    `json:"bundle_revision,omitempty"`
	Tests          int       `json:"tests"`
	SetAt          time.Time `json:"set_at"`
	// Evaluated and Differ sum the proxies' reports for this candidate: requests evaluated by both
	// revisions, and those whose decision (allow, status, ask) differed.
	Evaluated int64 `json:"evaluated"`
	Differ    int64 `json:"differ"`
}

// served is the answer of GET /internal/v1/policy: the revision in service with the candidate, if any.
type served struct {
	revision, shadow string
	body             []byte
}

// Served returns the body the proxies fetch and the revisions it holds.
func (s *Server) Served() (body []byte, revision, shadow string) {
	if sv := s.served.Load(); sv != nil {
		return sv.body, sv.revision, sv.shadow
	}
	cur := s.Current()
	if cur == nil {
		return nil, "", ""
	}
	return cur.Body, cur.Revision, ""
}

// publish recomputes the served body; the caller holds s.mu.
func (s *Server) publish() {
	cur := s.current.Load()
	if cur == nil {
		return
	}
	cand := s.candidate
	if cand == nil {
		s.served.Store(&served{revision: cur.Revision, body: cur.Body})
		return
	}
	body, err := json.Marshal(map[string]any{
		"revision": cur.Revision, "plan": cur.Plan, "data": cur.Data,
		"shadow": map[string]any{"revision": cand.Revision, "plan": cand.Plan, "data": cand.Data},
	})
	if err != nil { // json.RawMessage fields that were valid when compiled
		s.log.Error("shadow candidate not served", "error", err.Error())
		s.served.Store(&served{revision: cur.Revision, body: cur.Body})
		return
	}
	s.served.Store(&served{revision: cur.Revision, shadow: cand.Revision, body: body})
}

// SetShadow compiles and tests a candidate from an OPA bundle (tar.gz) and serves it beside the
// revision in service. A candidate equal to the revision in service is refused: it cannot differ.
func (s *Server) SetShadow(ctx context.Context, bundleTarGz []byte) (*Revision, error) {
	fsys, err := readBundle(bytes.NewReader(bundleTarGz))
	if err != nil {
		return nil, fmt.Errorf("policy: candidate bundle: %w", err)
	}
	src, err := sourceOf(fsys, "shadow candidate")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, err := s.buildFrom(ctx, src, "")
	if err != nil {
		return nil, err
	}
	if cur := s.current.Load(); cur != nil && cur.Revision == rev.Revision {
		return nil, errors.New("policy: the candidate is the revision in service")
	}
	s.candidate, s.candidateAt = rev, s.cfg.Now()
	s.publish()
	s.log.Info("shadow candidate served", "event", "policy_shadow", "candidate", rev.Revision, "bundle_revision", rev.Manifest)
	return rev, nil
}

// DropShadow stops serving the candidate; it reports whether there was one.
func (s *Server) DropShadow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	had := s.candidate != nil
	s.candidate = nil
	s.publish()
	if had {
		s.log.Info("shadow candidate dropped", "event", "policy_shadow_dropped")
	}
	return had
}

// Promote puts the candidate into service (promote, when not nil, does that server-wide, e.g. with
// the invite decisions, and must leave everything as it was when it fails). A later reload from the
// configured sources replaces it: write the candidate into the sources to keep it.
func (s *Server) Promote(ctx context.Context, promote func(context.Context, *Revision) error) (*Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cand := s.candidate
	if cand == nil {
		return nil, ErrNoCandidate
	}
	if promote != nil {
		if err := promote(ctx, cand); err != nil {
			return nil, err
		}
	}
	s.current.Store(cand)
	s.candidate = nil
	s.publish()
	s.log.Info("shadow candidate promoted", "event", "policy_promoted", "revision", cand.Revision, "bundle_revision", cand.Manifest)
	return cand, nil
}

// ErrNoCandidate: there is no shadow candidate.
var ErrNoCandidate = errors.New("policy: no shadow candidate")

func (s *Server) shadowStatus() *ShadowStatus {
	s.mu.Lock()
	cand, at := s.candidate, s.candidateAt
	s.mu.Unlock()
	if cand == nil {
		return nil
	}
	out := &ShadowStatus{Revision: cand.Revision, BundleRevision: cand.Manifest, Tests: cand.Tests, SetAt: at}
	s.st.mu.Lock()
	for _, p := range s.st.proxies {
		if p.Shadow == cand.Revision {
			out.Evaluated += p.ShadowEvaluated
			out.Differ += p.ShadowDiffer
		}
	}
	s.st.mu.Unlock()
	return out
}

// maxCandidateBytes bounds an uploaded candidate bundle.
const maxCandidateBytes = 8 << 20

func (s *Server) registerShadow(r gin.IRouter, promote func(context.Context, *Revision) error) {
	r.GET("/admin/v1/policy/shadow", func(c *gin.Context) {
		st := s.shadowStatus()
		if st == nil {
			c.JSON(http.StatusNotFound, gin.H{"error": ErrNoCandidate.Error()})
			return
		}
		c.JSON(http.StatusOK, st)
	})
	r.PUT("/admin/v1/policy/shadow", func(c *gin.Context) {
		raw, err := io.ReadAll(io.LimitReader(c.Request.Body, maxCandidateBytes+1))
		if err != nil || len(raw) > maxCandidateBytes {
			c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": fmt.Sprintf("candidate bundle unreadable or over %d bytes", maxCandidateBytes)})
			return
		}
		rev, err := s.SetShadow(c.Request.Context(), raw)
		if err != nil {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"error": err.Error(), "revision": s.Current().Revision})
			return
		}
		c.JSON(http.StatusOK, gin.H{"candidate": rev.Revision, "bundle_revision": rev.Manifest, "tests": rev.Tests, "revision": s.Current().Revision})
	})
	r.DELETE("/admin/v1/policy/shadow", func(c *gin.Context) {
		if !s.DropShadow() {
			c.JSON(http.StatusNotFound, gin.H{"error": ErrNoCandidate.Error()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"revision": s.Current().Revision})
	})
	r.POST("/admin/v1/policy/promote", func(c *gin.Context) {
		rev, err := s.Promote(c.Request.Context(), promote)
		switch {
		case errors.Is(err, ErrNoCandidate):
			c.JSON(http.StatusNotFound, gin.H{"error": err.Error()})
		case err != nil:
			c.JSON(http.StatusUnprocessableEntity, gin.H{"error": err.Error(), "revision": s.Current().Revision})
		default:
			c.JSON(http.StatusOK, gin.H{"revision": rev.Revision, "bundle_revision": rev.Manifest})
		}
	})
}
