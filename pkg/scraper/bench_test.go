package scraper

import (
	"fmt"
	"testing"

	"k8s.io/component-base/metrics"
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
