package localstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// OperatorEnvFile is the file in the data folder that holds what an operator needs to drive the local
// stack: the control plane's internal URL and shared secret (for tim-ctl, `--env-file`) and the VZD
// stand-in's OAuth client. It is written at every start (the secret is new each time), mode 0600.
func (s *Stack) OperatorEnvFile() string { return filepath.Join(s.opts.DataDir, "operator.env") }

func (s *Stack) writeOperatorEnv() error {
	lines := []string{
		"# Written by tim-local at start; the secret changes with every start.",
		"# tim-ctl --env-file " + s.OperatorEnvFile() + " policy status",
		"TIM_ADMIN_URL=" + s.ControlInternalURL,
		"TIM_ADMIN_SECRET=" + s.InternalSecret,
	}
	if s.ownVZD {
		lines = append(lines,
			"# The VZD-FHIR-Directory STAND-IN (OAuth2 client credentials of the provider):",
			"TIM_VZD_URL="+s.VZDURL,
			"TIM_VZD_CLIENT_ID="+vzdClientID,
			"TIM_VZD_CLIENT_SECRET="+vzdClientSecret,
		)
	}
	if err := os.WriteFile(s.OperatorEnvFile(), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("localstack: operator settings: %w", err)
	}
	return nil
}

// ReloadPolicy re-reads the policy sources (as SIGHUP does to tim-control); on error the previous
// revision stays in service.
func (s *Stack) ReloadPolicy(ctx context.Context) error { return s.Control.Reload(ctx) }

// PolicyDir is the policy directory served ("" for the embedded policies).
func (s *Stack) PolicyDir() string { return s.opts.PolicyDir }

// PolicyRefresh is the proxies' refresh interval.
func (s *Stack) PolicyRefresh() time.Duration {
	if s.opts.PolicyRefresh > 0 {
		return s.opts.PolicyRefresh
	}
	return 10 * time.Second
}
