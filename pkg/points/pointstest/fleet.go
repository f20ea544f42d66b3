// Package pointstest builds batches of a synthetic fleet for tests and
// benchmarks of the packages that consume points.
package pointstest

import (
	"fmt"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// PodRef names one pod of the fleet.
type PodRef struct{ Namespace, Name string }

// Fleet is one cycle of batches: nodes x pods x containers. Names are made
// once, so a benchmark measures its subject, not string formatting.
type Fleet struct {
	Batches []*points.Batch
	Nodes   []string
	Pods    []PodRef
}

// New builds a fleet; pods spread over ten namespaces.
func New(nodes, pods, containers int) *Fleet {
	f := &Fleet{}
	for n := range nodes {
		name := fmt.Sprintf("node-%05d", n)
		f.Nodes = append(f.Nodes, name)
		b := &points.Batch{Node: name}
		for p := range pods {
			pod := points.Pod{Namespace: fmt.Sprintf("ns-%d", p%10), Name: fmt.Sprintf("pod-%05d-%02d", n, p)}
			for c := range containers {
				pod.Containers = append(pod.Containers, points.Container{Name: fmt.Sprintf("c%d", c)})
			}
			b.Pods = append(b.Pods, pod)
			f.Pods = append(f.Pods, PodRef{pod.Namespace, pod.Name})
		}
		f.Batches = append(f.Batches, b)
	}
	return f
}

// At stamps every point with time t seconds: nodes use 4 cores and 8 GiB,
// containers 100 millicores and 64 MiB, counted from time 1.
func (f *Fleet) At(t int64) {
	for _, b := range f.Batches {
		b.NodePoint = Point(t, 1, float64(t)*4, 8<<30)
		for i := range b.Pods {
			for j := range b.Pods[i].Containers {
				b.Pods[i].Containers[j].Point = Point(t, 1, float64(t)/10, 64<<20)
			}
		}
	}
}

// Point is a sample at t seconds of a series started at start seconds with
// cpu seconds of CPU used and mem bytes of memory.
func Point(t, start int64, cpu float64, mem uint64) points.Point {
	return points.Point{Timestamp: t * 1e9, StartTime: start * 1e9, CPU: uint64(cpu * 1e9), Memory: mem, Has: points.HasCPU | points.HasMemory}
}
