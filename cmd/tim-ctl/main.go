// Command tim-ctl is the operator's command line for the control plane (tim-control): the policy in
// service and what each proxy holds, policy tests, reloads and shadow candidates, the federation list,
// the VZD's health and the incident log. It talks to the admin API on the control plane's internal
// listener with the internal shared secret.
//
//	tim-ctl --env-file .tim-local/operator.env policy status
//	TIM_ADMIN_URL=http://10.0.0.5:8091 TIM_ADMIN_SECRET_FILE=/run/secrets/internal tim-ctl federation status --json
//
// Exit codes: 0 done, 1 refused or failed (reason printed), 2 usage or missing settings, 3 control plane
// unreachable or credential refused.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/timfd/fachdienst/internal/opcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := opcli.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
