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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/timfd/fachdienst/pushgw/config"
	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/metrics"
)

func main() {
	cfgPath := flag.String("config", "pushgw.yaml", "configuration file")
	listen := flag.String("listen", "", "listen address (overrides the configuration)")
	flag.Parse()
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
	gw, disp, err := build(cfg, log)
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
		Handler:           gw.Handler(),
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
	gw.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err.Error())
	}
	n, err := disp.Shutdown(sctx)
	if err != nil {
		return err
	}
	log.Info("stopped", "spooled", n)
	return nil
}

// build assembles providers, queue (with the spool reloaded) and HTTP front.
func build(cfg *config.Config, log *slog.Logger) (*gateway.Gateway, *delivery.Dispatcher, error) {
	apps, err := cfg.BuildApps()
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	opt := cfg.Options()
	opt.Metrics, opt.Logger = m, log
	disp := delivery.New(apps, opt)
	if opt.SpoolPath != "" {
		n, err := delivery.Reload(disp, opt.SpoolPath)
		if err != nil {
			_, _ = disp.Shutdown(context.Background())
			return nil, nil, fmt.Errorf("spool: %w", err)
		}
		if n > 0 {
			log.Info("spooled notifications reloaded", "count", n)
		}
	}
	return gateway.New(disp, m, reg, log), disp, nil
}
