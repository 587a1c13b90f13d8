package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/timfd/fachdienst/control/federation"
)

// registerOperator mounts the operator's federation endpoints (tim-control's CLI reads them), behind
// the internal API's authentication:
//
//	GET  /admin/v1/federation          the list held: version, domains, age, VZD health
//	POST /admin/v1/federation/refresh  fetch the list from the VZD now
//	GET  /admin/v1/vzd/health          HealthState_VZD, checks, last error and its cause
//	GET  /admin/v1/incidents           the VZD incident log (newest last)
func (s *Server) registerOperator(r gin.IRouter) {
	r.GET("/admin/v1/federation", func(c *gin.Context) { c.JSON(http.StatusOK, s.federationStatus()) })
	r.POST("/admin/v1/federation/refresh", func(c *gin.Context) {
		if err := s.Fed.Refresh(c.Request.Context()); err != nil {
			c.JSON(http.StatusBadGateway, gin.H{"error": err.Error(), "cause": federation.Cause(err)})
			return
		}
		c.JSON(http.StatusOK, s.federationStatus())
	})
	r.GET("/admin/v1/vzd/health", func(c *gin.Context) {
		h := s.Fed.Health()
		status := http.StatusOK
		if !h.Healthy {
			status = http.StatusServiceUnavailable
		}
		c.JSON(status, healthJSON(h))
	})
	r.GET("/admin/v1/incidents", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"incidents": s.Fed.Incidents()}) })
}

type federationStatus struct {
	Version   int64          `json:"version"`
	Domains   int            `json:"domains"`
	UpdatedAt *time.Time     `json:"updated_at,omitempty"`
	Health    map[string]any `json:"vzd"`
}

func (s *Server) federationStatus() federationStatus {
	out := federationStatus{Health: healthJSON(s.Fed.Health())}
	if snap := s.Fed.Current(); snap != nil {
		at := snap.UpdatedAt
		out.Version, out.Domains, out.UpdatedAt = snap.Version, snap.Domains, &at
	}
	return out
}

// healthJSON writes the list's age in seconds (Health.Age is a duration).
func healthJSON(h federation.Health) map[string]any {
	return map[string]any{
		"healthy": h.Healthy, "checks": h.Checks, "age_seconds": int64(h.Age / time.Second), "outdated": h.Outdated,
		"incident_active": h.IncidentActive, "version": h.Version, "last_error": h.LastError, "last_cause": h.LastCause,
	}
}
