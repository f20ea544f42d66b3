package storage

import "github.com/kubemetrics/metrics-server/pkg/points"

// Servable is what a Store can serve, for the readiness check.
type Servable struct {
	// Nodes: at least one node has usage to serve.
	Nodes bool
	// Pods: at least one pod has usage to serve for every container.
	Pods bool
	// PodsReported: the last batches of the nodes held list at least one
	// pod, servable or not (a pod whose containers the kubelet did not
	// measure counts: it exists, and cannot be served).
	PodsReported bool
}

// Servable reports what the store can serve. It stops at the first
// servable node and the first servable pod, so it costs little once the
// store serves.
func (s *Store) Servable() Servable {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := Servable{PodsReported: len(s.pods) > 0}
	for _, n := range s.nodes {
		if _, ok := n.series.usage(s.epoch); ok {
			out.Nodes = true
			break
		}
	}
	var scratch []points.ContainerUsage
	for _, p := range s.pods {
		var ok bool
		if scratch, _, ok = s.podUsage(p, scratch[:0]); ok {
			out.Pods = true
			break
		}
	}
	return out
}
