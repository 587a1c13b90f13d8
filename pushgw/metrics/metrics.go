// Package metrics defines the push gateway's Prometheus metrics. Labels carry
// app ids and outcome reasons only, never pushkeys or Matrix ids.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics is one gateway's set of collectors.
type Metrics struct {
	Requests        *prometheus.CounterVec   // notify requests by HTTP status
	Received        *prometheus.CounterVec   // device notifications accepted for delivery, by app
	Sent            *prometheus.CounterVec   // delivered, by app
	Rejected        *prometheus.CounterVec   // pushkeys reported rejected, by app and reason
	Retried         *prometheus.CounterVec   // temporary failures scheduled for retry, by app
	Dropped         *prometheus.CounterVec   // given up, by app and reason
	QueueDepth      prometheus.Gauge         // accepted and not yet finished
	Delay           prometheus.Histogram     // random privacy delay chosen
	ProviderLatency *prometheus.HistogramVec // one provider call, by app
}

// New registers the collectors with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_pushgw_notify_requests_total", Help: "Notify requests by HTTP status.",
		}, []string{"code"}),
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_pushgw_received_total", Help: "Device notifications accepted for delivery.",
		}, []string{"app"}),
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_pushgw_sent_total", Help: "Device notifications the provider accepted.",
		}, []string{"app"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_pushgw_rejected_total", Help: "Pushkeys reported as rejected to the homeserver or remembered as such.",
		}, []string{"app", "reason"}),
		Retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_pushgw_retried_total", Help: "Temporary provider failures scheduled for another attempt.",
		}, []string{"app"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tim_pushgw_dropped_total", Help: "Device notifications given up.",
		}, []string{"app", "reason"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tim_pushgw_queue_depth", Help: "Accepted device notifications not yet finished.",
		}),
		Delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tim_pushgw_delay_seconds", Help: "Random delay before sending (A_22808).",
			Buckets: []float64{0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		}),
		ProviderLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tim_pushgw_provider_latency_seconds", Help: "Duration of one provider call.",
			Buckets: prometheus.DefBuckets,
		}, []string{"app"}),
	}
	reg.MustRegister(m.Requests, m.Received, m.Sent, m.Rejected, m.Retried, m.Dropped, m.QueueDepth, m.Delay, m.ProviderLatency)
	return m
}
