package federation

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exposes the table-2 attributes and the update outcomes. Create it once per process with the
// registry; the gauges read the Manager bound to it.
type Metrics struct {
	updates       *prometheus.CounterVec
	incidents     prometheus.Counter
	storeErrors   prometheus.Counter
	webhookErrors prometheus.Counter
	m             atomic.Pointer[Manager]
}

// NewMetrics creates the collectors and registers them with reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	x := &Metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_federation_updates_total",
			Help: "Federation list update attempts by result: updated, current (VZD 204), invalid (rejected list), failed (VZD unreachable or error).",
		}, []string{"result"}),
		incidents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tim_federation_incidents_total",
			Help: "Incidents raised because the VZD stayed unreachable through all health checks.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tim_federation_store_errors_total",
			Help: "Verified lists that could not be persisted.",
		}),
		webhookErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tim_federation_webhook_errors_total",
			Help: "Incident webhook deliveries that failed.",
		}),
	}
	if reg == nil {
		return x
	}
	gauge := func(name, help string, f func(h Health) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			m := x.m.Load()
			if m == nil {
				return 0
			}
			return f(m.Health())
		})
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, c := range []prometheus.Collector{
		x.updates, x.incidents, x.storeErrors, x.webhookErrors,
		gauge("tim_federation_vzd_healthy", "HealthState_VZD: 1 healthy, 0 unhealthy.", func(h Health) float64 { return b2f(h.Healthy) }),
		gauge("tim_federation_vzd_health_checks", "HealthStateCheck_VZD: failed health checks in the current outage (0..3).", func(h Health) float64 { return float64(h.Checks) }),
		gauge("tim_federation_list_age_seconds", "Age_FederationList: seconds since the VZD last delivered or confirmed the list.", func(h Health) float64 { return h.Age.Seconds() }),
		gauge("tim_federation_list_outdated", "1 when the list is older than TTL_FederationList (72 h) or missing.", func(h Health) float64 { return b2f(h.Outdated) }),
		gauge("tim_federation_list_version", "Version of the list held.", func(h Health) float64 { return float64(h.Version) }),
		gauge("tim_federation_incident_active", "1 while an incident is raised and not resolved.", func(h Health) float64 { return b2f(h.IncidentActive) }),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
		}
	}
	return x
}

func (x *Metrics) bind(m *Manager) { x.m.Store(m) }
