package orgcheck

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// RegisterAdmin mounts the operator's actions on r; the caller puts them behind its admin authentication
// (as policyserve.RegisterAdmin):
//
//	POST /admin/v1/organisations/check                          run the check now → 200 Report
//	POST /admin/v1/organisations/{telematikID}/decommission     controlled decommissioning (4.5.2)
//	                                                            → 200, 404 unknown, 502 VZD refused (repeatable)
func (c *Checker) RegisterAdmin(r gin.IRouter) {
	r.POST("/admin/v1/organisations/check", func(g *gin.Context) {
		rep, err := c.Run(g.Request.Context())
		if err != nil {
			g.JSON(http.StatusBadGateway, gin.H{"error": err.Error()})
			return
		}
		g.JSON(http.StatusOK, rep)
	})
	r.POST("/admin/v1/organisations/:telematikID/decommission", func(g *gin.Context) {
		err := c.Decommission(g.Request.Context(), g.Param("telematikID"))
		switch {
		case errors.Is(err, ErrNotFound):
			g.JSON(http.StatusNotFound, gin.H{"error": "no such organisation"})
		case err != nil:
			g.JSON(http.StatusBadGateway, gin.H{"error": err.Error()})
		default:
			g.JSON(http.StatusOK, gin.H{"status": Decommissioned})
		}
	})
}
