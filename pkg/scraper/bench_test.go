package scraper

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// BenchmarkObserveRequest is the self-metrics' share of one scrape: the
// request's duration, time and outcome, over 5,000 nodes.
func BenchmarkObserveRequest(b *testing.B) {
	m := NewMetrics(metrics.NewKubeRegistry(), 15)
	names := make([]string, 5000)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i)
		m.observeRequest(names[i], 0.01, 1.7e9, true)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.observeRequest(names[i%len(names)], 0.01, 1.7e9, i%10 != 0)
		i++
	}
}

// instantClient answers every node at once with the same batch.
type instantClient struct{ b points.Batch }

func (c *instantClient) GetMetrics(context.Context, *corev1.Node) (*points.Batch, error) {
	return &c.b, nil
}

type nopSink struct{}

func (nopSink) Store(*points.Batch) {}
func (nopSink) Prune()              {}
func (nopSink) Forget(string)       {}

// BenchmarkCycle is the scheduling's own cost of one cycle over a fleet
// whose kubelets answer at once: admission, phases, deadlines, recording.
func BenchmarkCycle(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("node-%d", i)
			}
			s := New(Config{Resolution: time.Minute, Timeout: 10 * time.Second}, nodes(names...),
				&instantClient{b: points.Batch{NodePoint: points.Point{Timestamp: 1, Has: points.HasCPU}}},
				nopSink{}, NewMetrics(metrics.NewKubeRegistry(), 60), clock.RealClock{})
			ctx := context.Background()
			s.Scrape(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if res := s.Scrape(ctx); res.Succeeded != n {
					b.Fatalf("%+v", res)
				}
			}
		})
	}
}

// TestCycleAllocationsPerNode: a warm cycle over nodes that answer at once
// allocates about four times a node (the request's deadline and the
// self-metrics' labels among them), no more: a request's goroutine is a
// kept worker's, not a new one with its closure (five a node then).
func TestCycleAllocationsPerNode(t *testing.T) {
	const n = 200
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i)
	}
	s := New(Config{Resolution: time.Minute, Timeout: 10 * time.Second}, nodes(names...),
		&instantClient{b: points.Batch{NodePoint: points.Point{Timestamp: 1, Has: points.HasCPU}}},
		nopSink{}, NewMetrics(metrics.NewKubeRegistry(), 60), clock.RealClock{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Scrape(ctx)
	s.Scrape(ctx)
	per := testing.AllocsPerRun(20, func() {
		if res := s.Scrape(ctx); res.Succeeded != n {
			t.Fatalf("%+v", res)
		}
	}) / n
	t.Logf("%.2f allocations a node a cycle", per)
	if per > 4.5 {
		t.Errorf("a warm cycle allocates %.2f times a node, want at most 4.5", per)
	}
}
