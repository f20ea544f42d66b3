package storage

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points/pointstest"
)

// The fleet sizes benchmarks run at: nodes x 30 pods x 2 containers.
var benchScenarios = []struct{ nodes, pods, containers int }{
	{100, 30, 2},
	{1000, 30, 2},
	{5000, 30, 2},
}

// fleet is a pointstest fleet with the API objects the getters take.
type fleet struct {
	*pointstest.Fleet
	nodes []*corev1.Node
	pods  []*podmeta.Pod
}

func newFleet(nodes, pods, containers int) *fleet {
	f := &fleet{Fleet: pointstest.New(nodes, pods, containers)}
	for _, n := range f.Nodes {
		f.nodes = append(f.nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	for _, p := range f.Pods {
		f.pods = append(f.pods, &podmeta.Pod{Namespace: p.Namespace, Name: p.Name})
	}
	return f
}

// filledStore is a store that has seen two cycles of a fleet, so every
// series has a rate.
func filledStore(nodes, pods, containers int) (*fleet, *Store) {
	f := newFleet(nodes, pods, containers)
	s := NewStore(Options{})
	for _, t := range []int64{100, 115} {
		f.At(t)
		for _, batch := range f.Batches {
			s.Store(batch)
		}
	}
	return f, s
}

func BenchmarkStore(b *testing.B) {
	for _, sc := range benchScenarios {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sc.nodes, sc.nodes*sc.pods), func(b *testing.B) {
			f := newFleet(sc.nodes, sc.pods, sc.containers)
			t := int64(100)
			f.At(t)
			before := heapInUse()
			s := NewStore(Options{})
			for _, batch := range f.Batches {
				s.Store(batch)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t += 15
				b.StopTimer()
				f.At(t)
				b.StartTimer()
				for _, batch := range f.Batches {
					s.Store(batch)
				}
			}
			// What the store holds a pod, its containers' points included
			// (the batches existed before it was made and are kept alive
			// to the end). Reported after the loop: ResetTimer drops
			// metrics reported before it.
			b.ReportMetric(float64(heapInUse()-before)/float64(sc.nodes*sc.pods), "held-B/pod")
			runtime.KeepAlive(s)
			runtime.KeepAlive(f)
		})
	}
}

// heapInUse is the live heap after a collection. Unit: bytes.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func BenchmarkGetPodUsage(b *testing.B) {
	for _, sc := range benchScenarios {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sc.nodes, sc.nodes*sc.pods), func(b *testing.B) {
			f, s := filledStore(sc.nodes, sc.pods, sc.containers)
			b.ReportAllocs()
			for b.Loop() {
				ms := s.GetPodUsage(f.pods...)
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
