// Package api serves NodeMetrics and PodMetrics of metrics.k8s.io, in both
// v1 and v1beta1, as REST storage on a generic API server: get and list,
// label and field selectors, Table output for kubectl get, and the
// freshness self-metric.
//
// Objects come from informer listers (nodes, and running pods' metadata);
// their usage from a MetricsGetter. It knows nothing about kubelets, the
// scrape loop or how rates are computed.
package api
