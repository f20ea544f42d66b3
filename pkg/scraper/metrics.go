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

	// requestOK and requestFailed are requestTotal's two series.
	requestOK, requestFailed metrics.CounterMetric

	mu sync.Mutex
	// reasons remembers which failure reasons each node has a series for,
	// so that ForgetNode can delete exactly those.
	reasons map[string]map[string]struct{}

	nodesMu sync.RWMutex
	// nodes holds each node's request series, looked up once: finding a
	// labelled series hashes the label and allocates, twice per scrape.
	nodes map[string]nodeSeries
}

// nodeSeries are the series of one node's requests.
type nodeSeries struct {
	duration metrics.ObserverMetric
	last     metrics.GaugeMetric
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
			Help:      "Failed scrapes per node and reason (no_address, connection, timeout, tls, http_status, redirect, too_large, decode, no_decode_slot, other). Series of deleted nodes are removed.",
		}, []string{"node", "reason"}),
		tickDuration: metrics.NewHistogram(&metrics.HistogramOpts{
			Namespace: "metrics_server",
			Subsystem: "manager",
			Name:      "tick_duration_seconds",
			Help:      "Duration of one scrape cycle over all nodes, in seconds.",
			Buckets:   metrics.ExponentialBuckets(resolutionSeconds/16, 2, 6),
		}),
		reasons: map[string]map[string]struct{}{},
		nodes:   map[string]nodeSeries{},
	}
	reg.MustRegister(m.requestDuration, m.requestTotal, m.lastRequestTime, m.failures, m.tickDuration)
	// Series taken before registration would be no-ops.
	m.requestOK, m.requestFailed = m.requestTotal.WithLabelValues("true"), m.requestTotal.WithLabelValues("false")
	return m
}

func (m *Metrics) observeRequest(node string, seconds float64, start float64, ok bool) {
	s := m.seriesOf(node)
	s.duration.Observe(seconds)
	s.last.Set(start)
	if ok {
		m.requestOK.Inc()
	} else {
		m.requestFailed.Inc()
	}
}

func (m *Metrics) seriesOf(node string) nodeSeries {
	m.nodesMu.RLock()
	s, ok := m.nodes[node]
	m.nodesMu.RUnlock()
	if ok {
		return s
	}
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	if s, ok = m.nodes[node]; !ok {
		s = nodeSeries{m.requestDuration.WithLabelValues(node), m.lastRequestTime.WithLabelValues(node)}
		m.nodes[node] = s
	}
	return s
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
	m.nodesMu.Lock()
	delete(m.nodes, node)
	m.nodesMu.Unlock()
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
