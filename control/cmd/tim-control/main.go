// Command tim-control runs the control plane of the TI-Messenger Fachdienst: the contact management
// API, the internal API for the messenger proxies (federation list, policy, invite permission), the
// federation list lifecycle against the VZD and the policy compiler; with registration.enabled also the
// registration service (Org-Admin portal and API, RegService tokens, blocking users, the daily
// organisation check).
//
//	tim-control -config /etc/tim-control/config.yaml
//
// Every setting can be overridden with a TIM_CONTROL_* environment variable (see control/config).
// SIGTERM or SIGINT shut it down gracefully; SIGHUP reloads the policy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/server"
	"github.com/timfd/fachdienst/internal/healthprobe"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tim-control:", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("config", os.Getenv("TIM_CONTROL_CONFIG"), "YAML configuration file (optional; TIM_CONTROL_CONFIG)")
	printEnv := flag.Bool("print-env", false, "list the environment variables that override settings, then exit")
	healthcheck := flag.String("healthcheck", "", "probe this URL (e.g. http://127.0.0.1:8090/readyz), exit 0 when it answers 200; for container health checks")
	flag.Parse()
	if *healthcheck != "" {
		return healthprobe.Probe(*healthcheck, 3*time.Second)
	}
	if *printEnv {
		for _, n := range config.EnvNames() {
			fmt.Println(n)
		}
		return nil
	}
	environ := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		// TIM_CONTROL_CONFIG names the file; it is not a setting.
		if !strings.HasPrefix(kv, "TIM_CONTROL_CONFIG=") {
			environ = append(environ, kv)
		}
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		return err
	}
	log := server.NewLogger(cfg.Log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := server.New(ctx, cfg, server.Deps{Logger: log})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = srv.Reload(ctx) // the outcome is logged
			}
		}
	}()
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped")
	return nil
}
