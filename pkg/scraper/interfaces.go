package scraper

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// Client fetches one node's metrics. It must honour ctx: the scraper sets the
// per-node deadline on it. ctx carries the scraper's decode gate (package
// gate): a client takes a slot once the answer's headers have arrived and
// holds it while it reads and decodes the body, so that at most
// Config.Parallelism bodies are in memory at once however many requests
// wait; it must not hold one while it waits for an answer. A nil error
// comes with a non-nil batch.
type Client interface {
	GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error)
}

// Recycler is a Client that reuses a batch's memory: after Sink.Store
// returns, the scraper hands the batch back.
type Recycler interface {
	Recycle(b *points.Batch)
}

// Sink receives scrape results. Store is called, from any goroutine, once
// per node that was scraped successfully; Prune once at the end of every
// cycle (a place to publish gauges: the scraper decides when a node's
// points are stale, and the sink must not drop nodes by age); Forget when
// a node's points must no longer be served: it was deleted (Store is then
// not called for it until a later cycle lists it again), is no longer
// listed, or its last requests failed (Config.StaleAfter; Store is called
// again when one succeeds). Store must not keep the batch or its slices
// after it returns (a Recycler client fills them again); the strings in
// it may be kept.
type Sink interface {
	Store(b *points.Batch)
	Prune()
	Forget(node string)
}

// NodeLister lists the nodes to scrape; a client-go NodeLister satisfies it.
type NodeLister interface {
	List(selector labels.Selector) ([]*corev1.Node, error)
}
