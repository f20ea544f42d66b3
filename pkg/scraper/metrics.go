package scraper

import (
	"sync"

	"k8s.io/component-base/metrics"
)

// Metrics are the scraper's self-metrics. Series named after a node are
// removed by ForgetNode, so their number is bounded by the nodes that exist.
type Metrics struct {
	requestDuration *metrics.HistogramVec
	requestTotal    *metrics.CounterVec
	lastRequestTime *metrics.GaugeVec
	failures        *metrics.CounterVec
	tickDuration    *metrics.Histogram

	mu sync.Mutex
	// reasons remembers which failure reasons each node has a series for,
	// so that ForgetNode can delete exactly those.
	reasons map[string]map[string]struct{}
}

// NewMetrics creates the scraper metrics and registers them with reg.
// The names match upstream metrics-server so dashboards carry over;
// metrics_server_kubelet_scrape_failures_total is ours.
func NewMetrics(reg metrics.KubeRegistry, resolutionSeconds float64) *Metrics {
	m := &Metrics{
		requestDuration: metrics.NewHistogramVec(&metrics.HistogramOpts{
			Namespace: "metrics_server",
			Subsystem: "kubelet",
			Name:      "request_duration_seconds",
			Help:      "Duration of requests to the kubelet API in seconds.",
			Buckets:   metrics.DefBuckets,
		}, []string{"node"}),
		requestTotal: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace: "metrics_server",
			Subsystem: "kubelet",
			Name:      "request_total",
			Help:      "Number of requests sent to the kubelet API, by outcome.",
		}, []string{"success"}),
		lastRequestTime: metrics.NewGaugeVec(&metrics.GaugeOpts{
			Namespace: "metrics_server",
			Subsystem: "kubelet",
			Name:      "last_request_time_seconds",
			Help:      "Time of the last request to the kubelet API, in seconds since the Unix epoch.",
		}, []string{"node"}),
		failures: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace: "metrics_server",
			Subsystem: "kubelet",
			Name:      "scrape_failures_total",
			Help:      "Failed scrapes per node and reason (no_address, connection, timeout, tls, http_status, too_large, decode, skipped, other). Series of deleted nodes are removed.",
		}, []string{"node", "reason"}),
		tickDuration: metrics.NewHistogram(&metrics.HistogramOpts{
			Namespace: "metrics_server",
			Subsystem: "manager",
			Name:      "tick_duration_seconds",
			Help:      "Duration of one scrape cycle over all nodes, in seconds.",
			Buckets:   metrics.ExponentialBuckets(resolutionSeconds/16, 2, 6),
		}),
		reasons: map[string]map[string]struct{}{},
	}
	reg.MustRegister(m.requestDuration, m.requestTotal, m.lastRequestTime, m.failures, m.tickDuration)
	return m
}

func (m *Metrics) observeRequest(node string, seconds float64, start float64, ok bool) {
	m.requestDuration.WithLabelValues(node).Observe(seconds)
	m.lastRequestTime.WithLabelValues(node).Set(start)
	if ok {
		m.requestTotal.WithLabelValues("true").Inc()
	} else {
		m.requestTotal.WithLabelValues("false").Inc()
	}
}

func (m *Metrics) observeFailure(node, reason string) {
	m.mu.Lock()
	set, ok := m.reasons[node]
	if !ok {
		set = map[string]struct{}{}
		m.reasons[node] = set
	}
	set[reason] = struct{}{}
	m.mu.Unlock()
	m.failures.WithLabelValues(node, reason).Inc()
}

// ForgetNode deletes every series labelled with the node.
func (m *Metrics) ForgetNode(node string) {
	m.requestDuration.Delete(map[string]string{"node": node})
	m.lastRequestTime.Delete(map[string]string{"node": node})
	m.mu.Lock()
	set := m.reasons[node]
	delete(m.reasons, node)
	m.mu.Unlock()
	for reason := range set {
		m.failures.Delete(map[string]string{"node": node, "reason": reason})
	}
}
