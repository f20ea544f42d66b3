package api

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
)

// NodeMetricsGetter returns node usage. Results are in input order, one per
// input node that has metrics; nodes without metrics are skipped. Each
// result's ObjectMeta carries the node's name, labels and creation time.
type NodeMetricsGetter interface {
	GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error)
}

// PodMetricsGetter returns pod usage in input order, pods without metrics
// skipped; each result's Index says which input pod it belongs to. It is
// compact (no maps) so that listing every pod of a large cluster is cheap.
type PodMetricsGetter interface {
	GetPodUsage(pods ...*podmeta.Pod) []points.PodUsage
}

// MetricsGetter serves both.
type MetricsGetter interface {
	NodeMetricsGetter
	PodMetricsGetter
}
