package storage

import (
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// TestPodReason: why the pod shop/web is or is not served, and that the
// answer agrees with GetPodUsage.
func TestPodReason(t *testing.T) {
	tests := []struct {
		name          string
		drop          bool
		batches       []*points.Batch
		wantCode      string
		wantNode      string
		wantContainer string
		// wantWords must appear in the message.
		wantWords string
	}{
		{
			name: "served",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}, {"envoy", 40, 300 << 20, 5}}}),
				batch("worker-1", 115, map[string][]ctr{"shop web": {{"app", 1_260, 18 << 30, 5}, {"envoy", 41, 300 << 20, 5}}}),
			},
			wantCode: PodServed, wantNode: "worker-1", wantWords: "worker-1",
		},
		{
			name:      "no kubelet reported it",
			batches:   []*points.Batch{batch("worker-1", 100, map[string][]ctr{"shop api": {{"api", 50, 2 << 30, 5}}})},
			wantCode:  PodNotReported,
			wantWords: "no kubelet listed the pod",
		},
		{
			name: "gone from its node's last batch",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}}}),
				batch("worker-1", 115, map[string][]ctr{}),
			},
			wantCode: PodNotReported,
		},
		{
			name:     "listed without containers",
			batches:  []*points.Batch{batch("worker-2", 100, map[string][]ctr{"shop web": {}})},
			wantCode: PodNoContainers, wantNode: "worker-2", wantWords: "without containers",
		},
		{
			name: "not yet two points",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}}}),
			},
			wantCode: PodOnePoint, wantNode: "worker-1", wantContainer: "app", wantWords: "a rate needs two",
		},
		{
			name: "restarted: one point again",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}}}),
				batch("worker-1", 115, map[string][]ctr{"shop web": {{"app", 1_260, 18 << 30, 5}}}),
				// Restarted before its previous sample's time (the counter went down).
				batch("worker-1", 130, map[string][]ctr{"shop web": {{"app", 2, 17 << 30, 5}}}),
			},
			wantCode: PodOnePoint, wantNode: "worker-1", wantContainer: "app",
		},
		{
			name: "a container without memory",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}, {"sidecar", 3, noMem, 5}}}),
				batch("worker-1", 115, map[string][]ctr{"shop web": {{"app", 1_260, 18 << 30, 5}, {"sidecar", 4, noMem, 5}}}),
			},
			wantCode: PodMissingValues, wantNode: "worker-1", wantContainer: "sidecar", wantWords: "no memory",
		},
		{
			name: "zero usage dropped, as upstream",
			drop: true,
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}, {"pause", 0, 0, 5}}}),
				batch("worker-1", 115, map[string][]ctr{"shop web": {{"app", 1_260, 18 << 30, 5}, {"pause", 0, 0, 5}}}),
			},
			wantCode: PodZeroUsage, wantNode: "worker-1", wantContainer: "pause", wantWords: "--zero-usage-pods=drop",
		},
		{
			name: "zero usage served by default",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}, {"pause", 0, 0, 5}}}),
				batch("worker-1", 115, map[string][]ctr{"shop web": {{"app", 1_260, 18 << 30, 5}, {"pause", 0, 0, 5}}}),
			},
			wantCode: PodServed, wantNode: "worker-1",
		},
		{
			name: "a damaged counter",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}}}),
				// Two million cores for 15 s.
				batch("worker-1", 115, map[string][]ctr{"shop web": {{"app", 1_200 + 15*2e6, 18 << 30, 5}}}),
			},
			wantCode: PodImplausible, wantNode: "worker-1", wantContainer: "app", wantWords: "million cores",
		},
		{
			name: "claimed by a second node: held by the first",
			batches: []*points.Batch{
				batch("worker-1", 100, map[string][]ctr{"shop web": {{"app", 1_200, 18 << 30, 5}}}),
				batch("worker-9", 101, map[string][]ctr{"shop web": {{"app", 5, 1 << 20, 5}}}),
			},
			wantCode: PodOnePoint, wantNode: "worker-1", wantContainer: "app",
		},
	}
	web := podObj("shop", "web")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(Options{DropZeroUsagePods: tt.drop, Clock: clocktesting.NewFakeClock(time.Unix(1000, 0))})
			for _, b := range tt.batches {
				s.Store(b)
			}
			got := s.PodReason("shop", "web")
			if got.Code != tt.wantCode || got.Node != tt.wantNode || got.Container != tt.wantContainer {
				t.Errorf("reason %+v; want code %s, node %q, container %q", got, tt.wantCode, tt.wantNode, tt.wantContainer)
			}
			if !strings.Contains(got.Message, tt.wantWords) {
				t.Errorf("message %q does not say %q", got.Message, tt.wantWords)
			}
			if served := len(s.GetPodUsage(web)) == 1; served != (got.Code == PodServed) {
				t.Errorf("GetPodUsage serves the pod: %v, but the reason is %s", served, got.Code)
			}
		})
	}
}

// TestSeriesWhyAgreesWithUsage: for series built from every combination of
// the values that decide, why says nothing exactly when usage serves.
func TestSeriesWhyAgreesWithUsage(t *testing.T) {
	hases := []points.Has{0, points.HasCPU, points.HasMemory, points.HasCPU | points.HasMemory}
	times := []int64{0, 100 * sec, 115 * sec}
	cpus := []uint64{0, 1_200e9, 1_260e9, 1 << 62}
	mems := []uint64{0, 18 << 30, 1 << 63}
	n := 0
	for _, has := range hases {
		for _, prevHas := range hases {
			for _, tm := range times {
				for _, prev := range times {
					for _, cpu := range cpus {
						for _, prevCPU := range cpus {
							for _, mem := range mems {
								s := series{time: tm, prevTime: prev, cpu: cpu, prevCPU: prevCPU, memory: mem, has: has, prevHas: prevHas}
								_, ok := s.usage(0)
								code, _ := s.why(0)
								if ok != (code == "") {
									t.Fatalf("series %+v: usage ok %v, why %q", s, ok, code)
								}
								n++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d series compared", n)
}
