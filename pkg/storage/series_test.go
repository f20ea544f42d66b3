package storage

import (
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

const sec = int64(time.Second)

// pt is a point at t seconds with cpu seconds of CPU, mem bytes, started at
// start seconds (0: unknown).
func pt(t, start int64, cpuSeconds float64, mem uint64) points.Point {
	return points.Point{Timestamp: t * sec, StartTime: start * sec, CPU: uint64(cpuSeconds * 1e9), Memory: mem, Has: points.HasCPU | points.HasMemory}
}

// feed adds the points to a new series, each arriving a second after its
// own time (arrivals count whole seconds from base, Unix nanoseconds): a
// kubelet whose clock agrees with the store's.
func feed(base int64, pts []points.Point) *series {
	var s series
	for _, p := range pts {
		s.add(p, arrival((p.Timestamp-base)/sec+1), int64(DefaultClockTolerance))
	}
	return &s
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
			got, ok := feed(0, tt.points).usage(0)
			checkUsage(t, got, ok, tt.want)
		})
	}
}

// checkUsage compares what a series served (got, ok) with want; nil
// wants nothing served.
func checkUsage(t *testing.T, got usage, ok bool, want *usage) {
	t.Helper()
	switch {
	case want == nil && ok:
		t.Fatalf("usage = %+v, want none", got)
	case want == nil:
	case !ok:
		t.Fatalf("no usage, want %+v", *want)
	default:
		if diff := cmp.Diff(*want, got, cmp.AllowUnexported(usage{})); diff != "" {
			t.Errorf("usage (-want +got):\n%s", diff)
		}
	}
}

// epoch is a realistic Unix time for fixtures (November 2025). Unit:
// nanoseconds.
const epoch = 1_763_100_000 * sec

// at is epoch plus s seconds (fractions allowed), in Unix nanoseconds.
func at(s float64) int64 { return epoch + int64(s*1e9) }

// cpuAt is the cumulative CPU of a container running at cores cores since
// start, sampled at ts. Unit: nanocore-seconds.
func cpuAt(cores float64, start, ts int64) uint64 { return uint64(cores * float64(ts-start)) }

// TestSeriesRestartRule: a container restarted only when its start time
// lies after the previous sample or its counter went down; a start time
// that merely changes (another format's precision, kwok's seconds since
// start) is the same container.
func TestSeriesRestartRule(t *testing.T) {
	const gib = 1 << 30
	// A JVM started two hours before epoch, running 2.5 cores with 18 GiB.
	start := at(-7200.734512)
	resource := func(ts int64, cpu uint64) points.Point {
		// /metrics/resource: millisecond sample times, sub-second start.
		return points.Point{Timestamp: ts / 1e6 * 1e6, StartTime: start, CPU: cpu, Memory: 18 * gib, Has: points.HasCPU | points.HasMemory}
	}
	summary := func(ts int64, cpu uint64) points.Point {
		// /stats/summary: whole-second sample and start times.
		return points.Point{Timestamp: ts / sec * sec, StartTime: start / sec * sec, CPU: cpu, Memory: 18 * gib, Has: points.HasCPU | points.HasMemory}
	}
	kwok := func(ts int64, sinceStart float64, cpu uint64) points.Point {
		// kwok v0.8.0: start time is seconds since the pod started, no
		// sample time (the request time stands in).
		return points.Point{Timestamp: ts, StartTime: int64(sinceStart * 1e9), CPU: cpu, Memory: 3 * gib, Has: points.HasCPU | points.HasMemory}
	}
	restartedAt := at(21.5)
	tests := []struct {
		name   string
		points []points.Point
		want   *usage // nil: nothing servable
	}{
		{
			name: "resource then summary: whole-second start is the same container",
			points: []points.Point{
				resource(at(0.25), cpuAt(2.5, start, at(0.25))),
				summary(at(15), cpuAt(2.5, start, at(15))),
			},
			want: &usage{nanoCores: 2_500_000_000, memory: 18 * gib, timestamp: at(15), window: at(15) - at(0.25)},
		},
		{
			name: "summary then resource: sub-second start is the same container",
			points: []points.Point{
				summary(at(0), cpuAt(2.5, start, at(0))),
				resource(at(15.312), cpuAt(2.5, start, at(15.312))),
			},
			want: &usage{nanoCores: 2_500_000_000, memory: 18 * gib, timestamp: at(15.312), window: at(15.312) - at(0)},
		},
		{
			name: "kwok: start time is seconds since start and grows",
			points: []points.Point{
				kwok(at(0), 120.5, 60e9),
				kwok(at(15.003), 135.503, 75e9),
				kwok(at(30.001), 150.501, 90e9),
			},
			want: &usage{nanoCores: 1_000_133_351, memory: 3 * gib, timestamp: at(30.001), window: at(30.001) - at(15.003)},
		},
		{
			name: "restart after the previous sample: rate from the start at once",
			points: []points.Point{
				resource(at(0), cpuAt(2.5, start, at(0))),
				resource(at(15), cpuAt(2.5, start, at(15))),
				{Timestamp: at(30), StartTime: restartedAt, CPU: cpuAt(0.5, restartedAt, at(30)), Memory: 2 * gib, Has: points.HasCPU | points.HasMemory},
			},
			want: &usage{nanoCores: 500_000_000, memory: 2 * gib, timestamp: at(30), window: at(30) - restartedAt},
		},
		{
			name: "restart after the previous sample with a higher counter is still a restart",
			points: []points.Point{
				resource(at(0), 10e9),
				resource(at(15), 11e9),
				{Timestamp: at(30), StartTime: restartedAt, CPU: 17e9, Memory: 2 * gib, Has: points.HasCPU | points.HasMemory},
			},
			want: &usage{nanoCores: 2_000_000_000, memory: 2 * gib, timestamp: at(30), window: at(30) - restartedAt},
		},
		{
			name: "counter went down, start time unchanged: no rate until the next point",
			points: []points.Point{
				resource(at(0), cpuAt(2.5, start, at(0))),
				resource(at(15), cpuAt(2.5, start, at(15))),
				resource(at(30), 4e9),
			},
		},
		{
			name: "counter went down, then a rate again",
			points: []points.Point{
				resource(at(0), cpuAt(2.5, start, at(0))),
				resource(at(15), cpuAt(2.5, start, at(15))),
				resource(at(30), 4e9),
				resource(at(45), 4e9+15*2.5e9),
			},
			want: &usage{nanoCores: 2_500_000_000, memory: 18 * gib, timestamp: at(45), window: 15 * sec},
		},
		{
			name: "start time after the sample's own time is not believed",
			points: []points.Point{
				resource(at(0), 10e9),
				{Timestamp: at(15), StartTime: at(300), CPU: 25e9, Memory: 2 * gib, Has: points.HasCPU | points.HasMemory},
			},
			want: &usage{nanoCores: 1_000_000_000, memory: 2 * gib, timestamp: at(15), window: 15 * sec},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := feed(epoch, tt.points).usage(epoch)
			checkUsage(t, got, ok, tt.want)
		})
	}
}

// TestSeriesClock: how a series weighs the kubelet's sample times against
// when the points arrived (seconds after epoch, the store's clock).
func TestSeriesClock(t *testing.T) {
	const gib = 1 << 30
	type step struct {
		sample  float64 // the kubelet's sample time, seconds after epoch; ±Inf: the ends of int64
		arrived arrival // when the store got it, seconds after epoch
		cpu     float64 // cumulative CPU seconds
	}
	tests := []struct {
		name  string
		steps []step
		want  *usage // nil: nothing servable
	}{
		{
			name:  "clock 5 minutes ahead: the kubelet's window, served at arrival",
			steps: []step{{300.2, 1, 100}, {315.2, 16, 130}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(16), window: 15 * sec},
		},
		{
			name:  "clock 5 minutes behind: served at its own time",
			steps: []step{{-299.8, 1, 100}, {-284.8, 16, 130}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(-284.8), window: 15 * sec},
		},
		{
			name: "a slow scrape of a cached sample is jitter, not a jump",
			// 9.9 s latency on the second scrape, and its sample 14 s old.
			steps: []step{{0.1, 1, 100}, {1.1, 25, 102}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(1.1), window: 1 * sec},
		},
		{
			name:  "one point from the future is ignored; the next one pairs with the latest",
			steps: []step{{0, 1, 100}, {15, 16, 130}, {4e9, 31, 160}, {45, 46, 190}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(45), window: 30 * sec},
		},
		{
			name:  "while one point from the future is ignored, the pair so far is served",
			steps: []step{{0, 1, 100}, {15, 16, 130}, {4e9, 31, 160}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(15), window: 15 * sec},
		},
		{
			name:  "a clock stepped back: the second point in a row starts over",
			steps: []step{{0, 1, 100}, {15, 16, 130}, {-270, 31, 160}, {-255, 46, 190}},
		},
		{
			name:  "a clock stepped back: a rate again from the third point",
			steps: []step{{0, 1, 100}, {15, 16, 130}, {-270, 31, 160}, {-255, 46, 190}, {-240, 61, 220}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(-240), window: 15 * sec},
		},
		{
			name:  "a first point from the future is given up for the points after it",
			steps: []step{{4e9, 1, 100}, {15, 16, 130}, {30, 31, 160}, {45, 46, 190}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(45), window: 15 * sec},
		},
		{
			name:  "points at the ends of int64 are ignored like any jump",
			steps: []step{{0, 1, 100}, {15, 16, 130}, {math.Inf(1), 31, 160}, {45, 46, 190}, {math.Inf(-1), 61, 220}, {75, 76, 250}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(75), window: 30 * sec},
		},
		{
			name:  "an older point within tolerance came out of order: ignored",
			steps: []step{{0, 1, 100}, {15, 16, 130}, {14, 31, 128}},
			want:  &usage{nanoCores: 2e9, memory: 18 * gib, timestamp: at(15), window: 15 * sec},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s series
			for _, st := range tt.steps {
				p := points.Point{Timestamp: at(st.sample), StartTime: at(-7200), CPU: uint64(st.cpu * 1e9), Memory: 18 * gib, Has: points.HasCPU | points.HasMemory}
				switch {
				case math.IsInf(st.sample, 1):
					p.Timestamp = math.MaxInt64
				case math.IsInf(st.sample, -1):
					p.Timestamp = math.MinInt64 + 1
				}
				s.add(p, st.arrived, int64(DefaultClockTolerance))
			}
			got, ok := s.usage(epoch)
			checkUsage(t, got, ok, tt.want)
		})
	}
}

// TestSeriesSize guards the memory a container costs: the arrival time and
// the jump count live in what was padding; swap and ephemeral storage add
// their two uint64s and nothing more.
func TestSeriesSize(t *testing.T) {
	if got := unsafe.Sizeof(series{}); got != 72 {
		t.Errorf("series is %d bytes, want 72", got)
	}
}

// TestSeriesSwapAndEphemeralStorage: swap and ephemeral storage are the
// latest point's, served only when that point reported them (absent, not
// zero, otherwise), and never decide whether a series is served.
func TestSeriesSwapAndEphemeralStorage(t *testing.T) {
	with := func(p points.Point, has points.Has, swap, eph uint64) points.Point {
		p.Has |= has
		p.Swap, p.EphemeralStorage = swap, eph
		return p
	}
	tests := []struct {
		name   string
		points []points.Point
		want   *usage
	}{
		{"none reported", []points.Point{pt(100, 1, 1, 10), pt(115, 1, 2, 20)},
			&usage{nanoCores: 66666667, memory: 20, timestamp: 115 * sec, window: 15 * sec}},
		{"swap zero is served", []points.Point{pt(100, 1, 1, 10), with(pt(115, 1, 2, 20), points.HasSwap, 0, 0)},
			&usage{nanoCores: 66666667, memory: 20, has: points.HasSwap, timestamp: 115 * sec, window: 15 * sec}},
		{"both, latest wins", []points.Point{with(pt(100, 1, 1, 10), points.HasSwap|points.HasEphemeralStorage, 5, 6),
			with(pt(115, 1, 2, 20), points.HasSwap|points.HasEphemeralStorage, 1<<33, 7<<20)},
			&usage{nanoCores: 66666667, memory: 20, swap: 1 << 33, ephemeral: 7 << 20, has: points.HasSwap | points.HasEphemeralStorage, timestamp: 115 * sec, window: 15 * sec}},
		{"reported before, not now: absent", []points.Point{with(pt(100, 1, 1, 10), points.HasSwap|points.HasEphemeralStorage, 5, 6), pt(115, 1, 2, 20)},
			&usage{nanoCores: 66666667, memory: 20, timestamp: 115 * sec, window: 15 * sec}},
		{"ephemeral storage alone", []points.Point{pt(100, 1, 1, 10), with(pt(115, 1, 2, 20), points.HasEphemeralStorage, 0, 4096)},
			&usage{nanoCores: 66666667, memory: 20, ephemeral: 4096, has: points.HasEphemeralStorage, timestamp: 115 * sec, window: 15 * sec}},
		{"past int64: not served", []points.Point{pt(100, 1, 1, 10), with(pt(115, 1, 2, 20), points.HasSwap|points.HasEphemeralStorage, 1<<63, math.MaxUint64)},
			&usage{nanoCores: 66666667, memory: 20, timestamp: 115 * sec, window: 15 * sec}},
		{"no rate: nothing served, swap or not", []points.Point{with(pt(115, 1, 2, 20), points.HasSwap, 5, 0)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := feed(0, tt.points)
			got, ok := s.usage(0)
			checkUsage(t, got, ok, tt.want)
		})
	}
}
