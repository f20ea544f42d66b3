package storage

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// The fleet sizes benchmarks run at: nodes x 30 pods x 2 containers.
var benchScenarios = []struct{ nodes, pods, containers int }{
	{100, 30, 2},
	{1000, 30, 2},
	{5000, 30, 2},
}

// fleet builds one cycle of batches at time t seconds; names are made once
// so the benchmark measures the store, not string formatting.
type fleet struct {
	batches []*points.Batch
	nodes   []*corev1.Node
	pods    []*metav1.PartialObjectMetadata
}

func newFleet(nodes, pods, containers int) *fleet {
	f := &fleet{}
	for n := range nodes {
		name := fmt.Sprintf("node-%05d", n)
		f.nodes = append(f.nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
		b := &points.Batch{Node: name}
		for p := range pods {
			pod := points.Pod{Namespace: fmt.Sprintf("ns-%d", p%10), Name: fmt.Sprintf("pod-%05d-%02d", n, p)}
			for c := range containers {
				pod.Containers = append(pod.Containers, points.Container{Name: fmt.Sprintf("c%d", c)})
			}
			b.Pods = append(b.Pods, pod)
			f.pods = append(f.pods, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}})
		}
		f.batches = append(f.batches, b)
	}
	return f
}

// at stamps every point of the fleet with time t seconds.
func (f *fleet) at(t int64) {
	for _, b := range f.batches {
		b.NodePoint = pt(t, 1, float64(t)*4, 8<<30)
		for i := range b.Pods {
			for j := range b.Pods[i].Containers {
				b.Pods[i].Containers[j].Point = pt(t, 1, float64(t)/10, 64<<20)
			}
		}
	}
}

// filledStore is a store that has seen two cycles of a fleet, so every
// series has a rate.
func filledStore(nodes, pods, containers int) (*fleet, *Store) {
	f := newFleet(nodes, pods, containers)
	s := NewStore(Options{})
	for _, t := range []int64{100, 115} {
		f.at(t)
		for _, batch := range f.batches {
			s.Store(batch)
		}
	}
	return f, s
}

func BenchmarkStore(b *testing.B) {
	for _, sc := range benchScenarios {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sc.nodes, sc.nodes*sc.pods), func(b *testing.B) {
			f := newFleet(sc.nodes, sc.pods, sc.containers)
			s := NewStore(Options{})
			t := int64(100)
			f.at(t)
			for _, batch := range f.batches {
				s.Store(batch)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t += 15
				b.StopTimer()
				f.at(t)
				b.StartTimer()
				for _, batch := range f.batches {
					s.Store(batch)
				}
			}
		})
	}
}

func BenchmarkGetPodMetrics(b *testing.B) {
	for _, sc := range benchScenarios {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sc.nodes, sc.nodes*sc.pods), func(b *testing.B) {
			f, s := filledStore(sc.nodes, sc.pods, sc.containers)
			b.ReportAllocs()
			for b.Loop() {
				ms, _ := s.GetPodMetrics(f.pods...)
				if len(ms) != len(f.pods) {
					b.Fatalf("got %d pods, want %d", len(ms), len(f.pods))
				}
			}
		})
	}
}

func BenchmarkGetNodeMetrics(b *testing.B) {
	for _, sc := range benchScenarios {
		b.Run(fmt.Sprintf("nodes=%d", sc.nodes), func(b *testing.B) {
			f, s := filledStore(sc.nodes, sc.pods, sc.containers)
			b.ReportAllocs()
			for b.Loop() {
				ms, _ := s.GetNodeMetrics(f.nodes...)
				if len(ms) != len(f.nodes) {
					b.Fatalf("got %d nodes, want %d", len(ms), len(f.nodes))
				}
			}
		})
	}
}
