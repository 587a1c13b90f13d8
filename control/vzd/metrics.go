package vzd

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics counts every attempt against the VZD by operation and outcome (HTTP status, "timeout",
// "network_error") and the provider-token renewals. Create it once per process and share it between
// clients; NewMetrics(nil) gives unregistered collectors (tests, tools).
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg when it is not nil. Registering twice on
// the same registry reuses the collectors already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_vzd_requests_total",
			Help: "Attempts against the VZD-FHIR-Directory by operation and outcome (HTTP status, timeout, network_error).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tim_vzd_request_duration_seconds",
			Help:    "Duration of attempts against the VZD-FHIR-Directory.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_vzd_provider_token_total",
			Help: "Provider access token exchanges by result (renewed, failed).",
		}, []string{"result"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
		m.tokens = register(reg, m.tokens)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *Metrics) observe(op, outcome string, d time.Duration) {
	m.requests.WithLabelValues(op, outcome).Inc()
	if d > 0 {
		m.duration.WithLabelValues(op).Observe(d.Seconds())
	}
}

// Count returns how many attempts of operation ended with outcome (an HTTP status such as "200", or
// "timeout", "network_error").
func (m *Metrics) Count(operation, outcome string) int {
	var d dto.Metric
	if err := m.requests.WithLabelValues(operation, outcome).Write(&d); err != nil {
		return 0
	}
	return int(d.GetCounter().GetValue())
}
