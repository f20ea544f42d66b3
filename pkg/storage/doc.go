// Package storage keeps the latest two points of every node and container in
// memory, turns each pair into a CPU rate and a memory working set (with
// the latest swap and ephemeral storage where the kubelet reported them),
// and answers the metrics API's getters.
//
// It knows nothing about HTTP, kubelets or the scrape loop: points arrive as
// one points.Batch per node, and leave as the internal metrics.k8s.io types.
package storage
