package scraper

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// BenchmarkLand is the cost of recording one node's answer (self-metrics,
// lane, status), over 5,000 healthy nodes landed in turn. (A failure's
// cost is its log line's.)
func BenchmarkLand(b *testing.B) {
	s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second}, nodes(), nil, nopSink{},
		NewMetrics(metrics.NewKubeRegistry(), 15), clock.RealClock{})
	jobs := make([]job, 5000)
	for i := range jobs {
		name := fmt.Sprintf("node-%d", i)
		jobs[i] = job{node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, state: &nodeState{}}
	}
	batch := &points.Batch{NodePoint: points.Point{Timestamp: 1, CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}
	began := time.Now()
	ok := attempt{began: began, held: 180 * time.Millisecond, batch: batch}
	for _, j := range jobs {
		s.land(j, ok)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.land(jobs[i%len(jobs)], ok)
		i++
	}
}

// TestLandHealthyAllocatesNothing: recording a healthy node's answer,
// which runs for every node every cycle, allocates nothing (with the
// default log verbosity).
func TestLandHealthyAllocatesNothing(t *testing.T) {
	s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second}, nodes(), nil, nopSink{},
		NewMetrics(metrics.NewKubeRegistry(), 15), clock.RealClock{})
	j := job{node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, state: &nodeState{}}
	batch := &points.Batch{NodePoint: points.Point{Timestamp: 1, CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}
	ok := attempt{began: time.Now(), held: 180 * time.Millisecond, batch: batch}
	s.land(j, ok) // creates the node's self-metric series
	if n := testing.AllocsPerRun(100, func() { s.land(j, ok) }); n != 0 {
		t.Errorf("land of a healthy node allocates %v times, want 0", n)
	}
}
