package storage

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
)

// GetNodeMetrics returns, in input order, the metrics of each node that has
// servable usage; the others are skipped. Name, labels and creation time come
// from the input objects, which are not changed.
func (s *Store) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	out := make([]metrics.NodeMetrics, 0, len(nodes))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, node := range nodes {
		n, ok := s.nodes[node.Name]
		if !ok {
			continue
		}
		u, ok := n.series.usage(s.epoch)
		if !ok {
			continue
		}
		out = append(out, metrics.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{
				Name:              node.Name,
				Labels:            node.Labels,
				CreationTimestamp: node.CreationTimestamp,
			},
			Timestamp: metav1.NewTime(time.Unix(0, u.timestamp)),
			Window:    metav1.Duration{Duration: time.Duration(u.window)},
			Usage:     ResourceList(u.public()),
		})
	}
	return out, nil
}

// GetPodUsage returns, in input order, the usage of each pod whose every
// container has servable usage; the others are skipped. A pod's timestamp
// and window are those of its container with the oldest sample. The
// containers of all results share one backing array: a list of 150,000
// pods costs a handful of allocations, not one map per container.
func (s *Store) GetPodUsage(pods ...*podmeta.Pod) []points.PodUsage {
	out := make([]points.PodUsage, 0, len(pods))
	// offsets[i] is where out[i]'s containers start in all.
	offsets := make([]int, 0, len(pods))
	all := make([]points.ContainerUsage, 0, 2*len(pods))
	s.mu.RLock()
	for i, pod := range pods {
		p, ok := s.pods[podKey{pod.Namespace, pod.Name}]
		if !ok {
			continue
		}
		start := len(all)
		var earliest usage
		all, earliest, ok = s.podUsage(p, all)
		if !ok {
			all = all[:start]
			continue
		}
		out = append(out, points.PodUsage{Index: i, Timestamp: earliest.timestamp, Window: earliest.window})
		offsets = append(offsets, start)
	}
	s.mu.RUnlock()
	// Slice the containers only now: appending may have moved all.
	for i := range out {
		end := len(all)
		if i+1 < len(out) {
			end = offsets[i+1]
		}
		out[i].Containers = all[offsets[i]:end:end]
	}
	return out
}

// podUsage appends the usage of every container of p to dst and returns
// the usage of the container with the oldest sample; ok is false when a
// container has none to serve (or, with DropZeroUsagePods, a cumulative
// CPU or a working set of zero).
func (s *Store) podUsage(p *podEntry, dst []points.ContainerUsage) (_ []points.ContainerUsage, earliest usage, ok bool) {
	if len(p.containers) == 0 {
		return dst, usage{}, false
	}
	for j := range p.containers {
		c := &p.containers[j]
		u, ok := c.series.usage(s.epoch)
		if !ok || (s.opts.DropZeroUsagePods && (c.series.cpu == 0 || c.series.memory == 0)) {
			return dst, usage{}, false
		}
		if j == 0 || u.timestamp < earliest.timestamp {
			earliest = u
		}
		dst = append(dst, points.ContainerUsage{Name: c.name, Usage: u.public()})
	}
	return dst, earliest, true
}

func (u usage) public() points.Usage {
	return points.Usage{NanoCores: u.nanoCores, Memory: u.memory, Swap: u.swap, EphemeralStorage: u.ephemeral, Has: u.has}
}

// ResourceSwap is the usage key of swap, the one kubectl top --show-swap
// reads (k8s.io/kubectl pkg/metricsutil); core/v1 names no such resource.
const ResourceSwap corev1.ResourceName = "swap"

// ResourceList renders a usage as the API's quantities: cpu and memory
// always, swap and ephemeral-storage only when the kubelet reported them
// (absent, not zero, otherwise), all in the forms the API serves (cpu in
// decimal SI nanocores, bytes in binary SI).
func ResourceList(u points.Usage) corev1.ResourceList {
	l := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(u.NanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(u.Memory), resource.BinarySI),
	}
	if u.Has&points.HasSwap != 0 {
		l[ResourceSwap] = *resource.NewQuantity(int64(u.Swap), resource.BinarySI)
	}
	if u.Has&points.HasEphemeralStorage != 0 {
		l[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(u.EphemeralStorage), resource.BinarySI)
	}
	return l
}
