package kubelet

import "github.com/kubemetrics/metrics-server/pkg/points"

// mergeEphemeralStorage copies the ephemeral storage of a full summary's
// batch (src) into a /metrics/resource batch of the same node (dst): the
// node's, and each container's that both list, matched by namespace, pod
// and container name. Everything else of dst stays as it is; a container
// src does not list goes without.
func mergeEphemeralStorage(dst, src *points.Batch) {
	take := func(to *points.Point, from *points.Point) {
		if from.Has&points.HasEphemeralStorage != 0 {
			to.EphemeralStorage = from.EphemeralStorage
			to.Has |= points.HasEphemeralStorage
		}
	}
	take(&dst.NodePoint, &src.NodePoint)
	if len(dst.Pods) == 0 || len(src.Pods) == 0 {
		return
	}
	type key struct{ namespace, name string }
	index := make(map[key]int, len(src.Pods))
	for i := range src.Pods {
		index[key{src.Pods[i].Namespace, src.Pods[i].Name}] = i
	}
	for i := range dst.Pods {
		d := &dst.Pods[i]
		j, ok := index[key{d.Namespace, d.Name}]
		if !ok {
			continue
		}
		s := &src.Pods[j]
		for k := range d.Containers {
			// Pods hold a few containers: a scan beats a map.
			for l := range s.Containers {
				if s.Containers[l].Name == d.Containers[k].Name {
					take(&d.Containers[k].Point, &s.Containers[l].Point)
					break
				}
			}
		}
	}
}
