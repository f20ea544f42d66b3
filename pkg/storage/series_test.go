package storage

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

const sec = int64(time.Second)

// pt is a point at t seconds with cpu seconds of CPU, mem bytes, started at
// start seconds (0: unknown).
func pt(t, start int64, cpuSeconds float64, mem uint64) points.Point {
	return points.Point{Timestamp: t * sec, StartTime: start * sec, CPU: uint64(cpuSeconds * 1e9), Memory: mem, Has: points.HasCPU | points.HasMemory}
}

func TestSeries(t *testing.T) {
	noCPU := pt(130, 100, 0, 500)
	noCPU.Has = points.HasMemory
	noMem := pt(130, 100, 3, 0)
	noMem.Has = points.HasCPU
	tests := []struct {
		name   string
		points []points.Point
		want   *usage // nil: nothing servable
	}{
		{name: "one point has no rate", points: []points.Point{pt(100, 50, 1, 10)}},
		{
			name:   "rate over the window",
			points: []points.Point{pt(100, 50, 10, 10), pt(115, 50, 13, 20)},
			want:   &usage{nanoCores: 200_000_000, memory: 20, timestamp: 115 * sec, window: 15 * sec},
		},
		{
			name:   "a duplicate keeps the pair",
			points: []points.Point{pt(100, 50, 10, 10), pt(115, 50, 13, 20), pt(115, 50, 13, 20)},
			want:   &usage{nanoCores: 200_000_000, memory: 20, timestamp: 115 * sec, window: 15 * sec},
		},
		{
			name:   "an older point is ignored",
			points: []points.Point{pt(100, 50, 10, 10), pt(115, 50, 13, 20), pt(110, 50, 11, 99)},
			want:   &usage{nanoCores: 200_000_000, memory: 20, timestamp: 115 * sec, window: 15 * sec},
		},
		{
			name:   "the pair slides",
			points: []points.Point{pt(100, 50, 10, 10), pt(115, 50, 13, 20), pt(130, 50, 13, 30)},
			want:   &usage{nanoCores: 0, memory: 30, timestamp: 130 * sec, window: 15 * sec},
		},
		{
			name:   "counter reset without start time: no rate until the next point",
			points: []points.Point{pt(100, 0, 10, 10), pt(115, 0, 13, 20), pt(130, 0, 1, 30)},
		},
		{
			name:   "counter reset, then a rate again",
			points: []points.Point{pt(100, 0, 10, 10), pt(115, 0, 13, 20), pt(130, 0, 1, 30), pt(145, 0, 4, 40)},
			want:   &usage{nanoCores: 200_000_000, memory: 40, timestamp: 145 * sec, window: 15 * sec},
		},
		{
			name:   "restart inside the window: rate from the start at once",
			points: []points.Point{pt(100, 50, 10, 10), pt(115, 50, 13, 20), pt(130, 120, 5, 30)},
			want:   &usage{nanoCores: 500_000_000, memory: 30, timestamp: 130 * sec, window: 10 * sec},
		},
		{
			name:   "restart with a higher counter is still a restart",
			points: []points.Point{pt(100, 50, 1, 10), pt(115, 50, 2, 20), pt(130, 120, 40, 30)},
			want:   &usage{nanoCores: 4_000_000_000, memory: 30, timestamp: 130 * sec, window: 10 * sec},
		},
		{
			name:   "restart with a start time before the last sample: wait",
			points: []points.Point{pt(100, 50, 10, 10), pt(115, 50, 13, 20), pt(130, 110, 5, 30)},
		},
		{
			name:   "missing CPU in the latest point",
			points: []points.Point{pt(100, 100, 1, 10), pt(115, 100, 2, 10), noCPU},
		},
		{
			name:   "missing memory in the latest point",
			points: []points.Point{pt(100, 100, 1, 10), pt(115, 100, 2, 10), noMem},
		},
		{
			name:   "missing CPU in the earlier point",
			points: []points.Point{pt(100, 100, 1, 10), noCPU, pt(145, 100, 4, 40)},
		},
		{
			name:   "absurd rate is not served",
			points: []points.Point{pt(100, 50, 0, 10), pt(101, 50, 2e6, 10)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s series
			for _, p := range tt.points {
				s.add(p)
			}
			got, ok := s.usage()
			if tt.want == nil {
				if ok {
					t.Fatalf("usage = %+v, want none", got)
				}
				return
			}
			if !ok {
				t.Fatalf("no usage, want %+v", *tt.want)
			}
			if diff := cmp.Diff(*tt.want, got, cmp.AllowUnexported(usage{})); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}
