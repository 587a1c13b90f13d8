// Command tim-pushgw is the TI-Messenger push gateway: the Matrix Push
// Gateway API in front of APNs, FCM and Web Push, with the privacy rules of
// A_22808 (no content, encrypted payloads, random delay).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/timfd/fachdienst/internal/healthprobe"
	"github.com/timfd/fachdienst/pushgw/config"
	"github.com/timfd/fachdienst/pushgw/service"
)

func main() {
	cfgPath := flag.String("config", "pushgw.yaml", "configuration file")
	listen := flag.String("listen", "", "listen address (overrides the configuration)")
	healthcheck := flag.String("healthcheck", "", "probe this URL (e.g. http://127.0.0.1:8092/readyz), exit 0 when it answers 200; for container health checks")
	flag.Parse()
	if *healthcheck != "" {
		if err := healthprobe.Probe(*healthcheck, 3*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "tim-pushgw:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*cfgPath, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "tim-pushgw:", err)
		os.Exit(1)
	}
}

func run(cfgPath, listenOverride string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log_level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *cfg.MaxDelay < config.MaxDelayLimit {
		log.Warn("random delay bound below 10s; A_22808 asks for 0-10s", "max_delay", cfg.MaxDelay.String())
	}
	svc, err := service.New(cfg, log)
	if err != nil {
		return err
	}

	addr := cfg.Listen
	if listenOverride != "" {
		addr = listenOverride
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           svc.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	log.Info("push gateway listening", "addr", ln.Addr().String(), "apps", len(cfg.Apps))
	fmt.Printf("tim-pushgw listening on %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}

	// Stop taking requests, let accepted ones finish, then send what can be
	// sent within the grace period and spool the rest.
	log.Info("shutting down")
	svc.Gateway.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err.Error())
	}
	n, err := svc.Shutdown(sctx)
	if err != nil {
		return err
	}
	log.Info("stopped", "spooled", n)
	return nil
}
