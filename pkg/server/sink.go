package server

import (
	"k8s.io/component-base/metrics"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// countingSink passes batches to the store and, at the end of each cycle,
// publishes the number of stored points as metrics_server_storage_points
// and the number of pods claimed by a node other than the one holding them
// as metrics_server_storage_disputed_pods.
type countingSink struct {
	store    *storage.Store
	points   *metrics.GaugeVec
	disputed *metrics.Gauge
}

func newCountingSink(store *storage.Store, reg metrics.KubeRegistry) *countingSink {
	g := metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "metrics_server",
		Subsystem: "storage",
		Name:      "points",
		Help:      "Number of metrics points stored, by type (node, container).",
	}, []string{"type"})
	d := metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "metrics_server",
		Subsystem: "storage",
		Name:      "disputed_pods",
		Help:      "Number of pods that a kubelet reported while another node holds them; such claims are ignored. Non-zero means two kubelets report the same pod (a misconfigured or hostile node).",
	})
	reg.MustRegister(g, d)
	return &countingSink{store: store, points: g, disputed: d}
}

func (s *countingSink) Store(b *points.Batch) { s.store.Store(b) }

func (s *countingSink) Forget(node string) { s.store.Forget(node) }

func (s *countingSink) Prune() {
	s.store.Prune()
	nodes, containers := s.store.Points()
	s.points.WithLabelValues("node").Set(float64(nodes))
	s.points.WithLabelValues("container").Set(float64(containers))
	s.disputed.Set(float64(s.store.Disputed()))
}
