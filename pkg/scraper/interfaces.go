package scraper

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// Client fetches one node's metrics. It must honour ctx: the scraper sets the
// per-node deadline on it. A nil error comes with a non-nil batch.
type Client interface {
	GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error)
}

// Sink receives scrape results. Store is called concurrently, once per node
// that was scraped successfully; Prune once at the end of every cycle.
type Sink interface {
	Store(b *points.Batch)
	Prune()
}

// NodeLister lists the nodes to scrape; a client-go NodeLister satisfies it.
type NodeLister interface {
	List(selector labels.Selector) ([]*corev1.Node, error)
}
