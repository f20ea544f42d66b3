package storage

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// readyBatch is a node of 48 cores at 30 in use and 96 GiB of working set
// at the clock's time, with pods of one 2-core, 12 GiB container each;
// measured false leaves the pods' containers out, as a kubelet whose
// cAdvisor lost them does.
func readyBatch(clk *clocktesting.FakeClock, node string, pods []string, measured bool) *points.Batch {
	now := clk.Now()
	up := now.Sub(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	b := &points.Batch{Node: node, NodePoint: points.Point{Timestamp: now.UnixNano(),
		CPU: uint64(30 * up.Nanoseconds()), Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}
	for _, name := range pods {
		p := points.Pod{Namespace: "shop", Name: name}
		if measured {
			started := time.Date(2026, 11, 26, 8, 0, 0, 250_000_000, time.UTC)
			p.Containers = []points.Container{{Name: "app", Point: points.Point{Timestamp: now.UnixNano(),
				StartTime: started.UnixNano(), CPU: uint64(2 * now.Sub(started).Nanoseconds()),
				Memory: 12 << 30, Has: points.HasCPU | points.HasMemory}}}
		}
		b.Pods = append(b.Pods, p)
	}
	return b
}

func TestStoreServable(t *testing.T) {
	tests := []struct {
		name     string
		scrapes  int
		pods     []string
		measured bool
		want     Servable
	}{
		{name: "empty", scrapes: 0, want: Servable{}},
		{name: "one scrape: no rates yet", scrapes: 1, pods: []string{"web-1"}, measured: true,
			want: Servable{PodsReported: true}},
		{name: "two scrapes", scrapes: 2, pods: []string{"web-1", "web-2"}, measured: true,
			want: Servable{Nodes: true, Pods: true, PodsReported: true}},
		{name: "nodes without pods", scrapes: 2, want: Servable{Nodes: true}},
		{name: "pods the kubelet did not measure", scrapes: 2, pods: []string{"web-1"}, measured: false,
			want: Servable{Nodes: true, PodsReported: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
			s := NewStore(Options{StaleAfter: time.Minute, Clock: clk})
			for range tt.scrapes {
				s.Store(readyBatch(clk, "node-1", tt.pods, tt.measured))
				clk.Step(15 * time.Second)
			}
			if got := s.Servable(); got != tt.want {
				t.Errorf("Servable() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
