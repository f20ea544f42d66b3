package api

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"
)

// NodeMetricsGetter returns node usage. Results are in input order, one per
// input node that has metrics; nodes without metrics are skipped. Each
// result's ObjectMeta carries the node's name, labels and creation time.
type NodeMetricsGetter interface {
	GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error)
}

// PodMetricsGetter returns pod usage, with the same contract as
// NodeMetricsGetter: input order, pods without metrics skipped.
type PodMetricsGetter interface {
	GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error)
}

// MetricsGetter serves both.
type MetricsGetter interface {
	NodeMetricsGetter
	PodMetricsGetter
}
