package opcli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type vzdHealth struct {
	Healthy        bool   `json:"healthy"`
	Checks         int    `json:"checks"`
	AgeSeconds     int64  `json:"age_seconds"`
	Outdated       bool   `json:"outdated"`
	IncidentActive bool   `json:"incident_active"`
	Version        int64  `json:"version"`
	LastError      string `json:"last_error"`
	LastCause      string `json:"last_cause"`
}

type fedStatus struct {
	Version   int64      `json:"version"`
	Domains   int        `json:"domains"`
	UpdatedAt *time.Time `json:"updated_at"`
	VZD       vzdHealth  `json:"vzd"`
}

func (c *client) federationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "federation", Short: "The federation list the control plane holds and serves"}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Version, domains and age of the list held", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st fedStatus
			raw, err := c.call(cmd.Context(), "GET", "/admin/v1/federation", nil, "", &st)
			return c.jsonOr(raw, err, func() { c.printFed(&st) })
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "refresh", Short: "Fetch the list from the VZD-FHIR-Directory now", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st fedStatus
			raw, err := c.call(cmd.Context(), "POST", "/admin/v1/federation/refresh", nil, "", &st)
			if err != nil && !c.json {
				return fmt.Errorf("refresh failed, the list held stays in service: %w", err)
			}
			return c.jsonOr(raw, err, func() { c.printFed(&st) })
		},
	})
	return cmd
}

func (c *client) printFed(st *fedStatus) {
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "list version\t%d\n", st.Version)
	fmt.Fprintf(tw, "domains\t%d\n", st.Domains)
	if st.UpdatedAt != nil {
		fmt.Fprintf(tw, "confirmed by the VZD\t%s\n", ago(*st.UpdatedAt))
	}
	fmt.Fprintf(tw, "outdated (older than 72 h)\t%t\n", st.VZD.Outdated)
	tw.Flush()
	c.printHealth(&st.VZD)
}

func (c *client) printHealth(h *vzdHealth) {
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "VZD healthy\t%t\n", h.Healthy)
	fmt.Fprintf(tw, "failed health checks\t%d\n", h.Checks)
	fmt.Fprintf(tw, "incident active\t%t\n", h.IncidentActive)
	if h.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s: %s\n", h.LastCause, h.LastError)
	}
	tw.Flush()
}

func (c *client) vzdCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "vzd", Short: "The VZD-FHIR-Directory as the control plane sees it"}
	cmd.AddCommand(&cobra.Command{
		Use: "health", Short: "HealthState_VZD; exit 1 when unhealthy", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h vzdHealth
			raw, err := c.call(cmd.Context(), "GET", "/admin/v1/vzd/health", nil, "", &h)
			if err != nil {
				// 503 carries the health document: show it, then fail.
				if jerr := jsonUnmarshal(raw, &h); jerr == nil && raw != nil {
					if c.json {
						c.printJSON(raw)
					} else {
						c.printHealth(&h)
					}
					return fail(ExitRefused, "the VZD is unhealthy")
				}
			}
			return c.jsonOr(raw, err, func() { c.printHealth(&h) })
		},
	})
	return cmd
}

func (c *client) incidentsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "incidents", Short: "The VZD incident log with each incident's cause", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Incidents []struct {
					RaisedAt   time.Time  `json:"raised_at"`
					Cause      string     `json:"cause"`
					Error      string     `json:"error"`
					ResolvedAt *time.Time `json:"resolved_at"`
				} `json:"incidents"`
			}
			raw, err := c.call(cmd.Context(), "GET", "/admin/v1/incidents", nil, "", &r)
			return c.jsonOr(raw, err, func() {
				if len(r.Incidents) == 0 {
					fmt.Fprintln(c.out, "no incidents")
					return
				}
				tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "RAISED\tCAUSE\tRESOLVED\tERROR")
				for _, in := range r.Incidents {
					res := "open"
					if in.ResolvedAt != nil {
						res = in.ResolvedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.RaisedAt.UTC().Format(time.RFC3339), in.Cause, res, in.Error)
				}
				tw.Flush()
			})
		},
	}
}
