package storage

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"
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
		u, ok := n.series.usage()
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
			Usage:     resourceList(u),
		})
	}
	return out, nil
}

// GetPodMetrics returns, in input order, the metrics of each pod whose every
// container has servable usage; the others are skipped. A pod's timestamp
// and window are those of its container with the oldest sample.
func (s *Store) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	out := make([]metrics.PodMetrics, 0, len(pods))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, pod := range pods {
		p, ok := s.pods[podKey{pod.Namespace, pod.Name}]
		if !ok {
			continue
		}
		pm, ok := s.podUsage(p)
		if !ok {
			continue
		}
		pm.ObjectMeta = metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			Labels:            pod.Labels,
			CreationTimestamp: pod.CreationTimestamp,
		}
		out = append(out, pm)
	}
	return out, nil
}

// podUsage builds a pod's metrics without its ObjectMeta.
func (s *Store) podUsage(p *podEntry) (metrics.PodMetrics, bool) {
	if len(p.containers) == 0 {
		return metrics.PodMetrics{}, false
	}
	pm := metrics.PodMetrics{Containers: make([]metrics.ContainerMetrics, 0, len(p.containers))}
	var earliest usage
	for i := range p.containers {
		c := &p.containers[i]
		u, ok := c.series.usage()
		if !ok {
			return metrics.PodMetrics{}, false
		}
		if s.opts.DropZeroUsagePods && (u.nanoCores == 0 || u.memory == 0) {
			return metrics.PodMetrics{}, false
		}
		if i == 0 || u.timestamp < earliest.timestamp {
			earliest = u
		}
		pm.Containers = append(pm.Containers, metrics.ContainerMetrics{Name: c.name, Usage: resourceList(u)})
	}
	pm.Timestamp = metav1.NewTime(time.Unix(0, earliest.timestamp))
	pm.Window = metav1.Duration{Duration: time.Duration(earliest.window)}
	return pm, true
}

func resourceList(u usage) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(u.nanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(u.memory), resource.BinarySI),
	}
}
