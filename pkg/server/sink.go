package server

import (
	"time"

	"k8s.io/component-base/metrics"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// countingSink passes batches to the store and, at the end of each cycle,
// publishes the number of stored points as metrics_server_storage_points.
type countingSink struct {
	store  *storage.Store
	points *metrics.GaugeVec
}

func newCountingSink(store *storage.Store, reg metrics.KubeRegistry) *countingSink {
	g := metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "metrics_server",
		Subsystem: "storage",
		Name:      "points",
		Help:      "Number of metrics points stored, by type (node, container).",
	}, []string{"type"})
	reg.MustRegister(g)
	return &countingSink{store: store, points: g}
}

func (s *countingSink) Store(b *points.Batch) { s.store.Store(b) }

func (s *countingSink) Prune() {
	s.store.Prune()
	nodes, containers := s.store.Points()
	s.points.WithLabelValues("node").Set(float64(nodes))
	s.points.WithLabelValues("container").Set(float64(containers))
}

// spreadFor chooses over how much of a cycle node starts are spread: a
// quarter of the resolution, at most 5s and at most what leaves a full
// timeout before the cycle ends, so a spread never makes a cycle overrun.
func spreadFor(resolution, timeout time.Duration) time.Duration {
	spread := min(resolution/4, 5*time.Second)
	if room := resolution - timeout; room < spread {
		spread = max(room, 0)
	}
	return spread
}

// followUpFor is how long after the first scrape a second one runs, so a
// started or failed-over replica serves rates within seconds rather than
// one resolution later: a third of the resolution, at most 5s. Not less:
// summary timestamps have whole-second precision, so a shorter window
// would give a rough rate.
func followUpFor(resolution time.Duration) time.Duration {
	return min(resolution/3, 5*time.Second)
}
