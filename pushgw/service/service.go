// Package service assembles a complete push gateway from its configuration:
// providers, queue (with the spool reloaded) and HTTP front. The binary
// tim-pushgw runs it; a local all-in-one runner can embed it.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/timfd/fachdienst/pushgw/config"
	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/gateway"
	"github.com/timfd/fachdienst/pushgw/metrics"
)

// Service is a running push gateway without its listener.
type Service struct {
	Gateway    *gateway.Gateway
	Dispatcher *delivery.Dispatcher
	Registry   *prometheus.Registry
	log        *slog.Logger
}

// New builds the providers, starts the queue and reloads the spool.
func New(cfg *config.Config, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	apps, err := cfg.BuildApps()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	opt := cfg.Options()
	opt.Metrics, opt.Logger = m, log
	if opt.SpoolPath == "" {
		log.Warn("no spool configured: notifications still queued at shutdown are lost")
	} else if err := writable(filepath.Dir(opt.SpoolPath)); err != nil {
		// Found out now rather than at shutdown, when it would cost data.
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	disp := delivery.New(apps, opt)
	if opt.SpoolPath != "" {
		n, err := delivery.Reload(disp, opt.SpoolPath)
		if err != nil {
			_, _ = disp.Shutdown(context.Background())
			return nil, fmt.Errorf("spool: %w", err)
		}
		if n > 0 {
			log.Info("spooled notifications reloaded", "count", n)
		}
	}
	return &Service{Gateway: gateway.New(disp, m, reg, log), Dispatcher: disp, Registry: reg, log: log}, nil
}

// Handler serves the Push Gateway API and the operational endpoints.
func (s *Service) Handler() http.Handler { return s.Gateway.Handler() }

// Shutdown drains: readiness fails, calls in flight get until ctx ends, the
// rest is spooled. Stop the HTTP server between Drain and Shutdown.
func (s *Service) Shutdown(ctx context.Context) (int, error) {
	s.Gateway.Drain()
	return s.Dispatcher.Shutdown(ctx)
}

func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
