package storage

import (
	"math"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// maxNanoCores caps a believable rate: a million cores. A larger rate comes
// from damaged counters, not from a machine, and is not served.
const maxNanoCores = 1e6 * 1e9

// arrival is when a point reached the store, in whole seconds since the
// store's epoch (a whole second; see Store.arrivalNow). Four bytes reach 136
// years and fit in the padding of a series.
type arrival uint32

// series is the latest two points of one node or container: all of the
// latest, and of the one before only what a rate needs (time and CPU), plus
// when the latest arrived. It is 72 bytes against 112 for two whole points;
// at 300,000 containers the difference is 12 MB. Swap and ephemeral storage
// cost 16 of the 72 bytes (4.8 MB at 300,000 containers) whether reported
// or not: a pointer to them would cost 8 bytes anyway, and the garbage
// collector a pointer to scan in every series. A zero time means the point
// is absent.
type series struct {
	// time, start, cpu, memory, swap, ephemeral and has are the latest
	// point's Timestamp, StartTime, CPU, Memory, Swap, EphemeralStorage
	// and Has.
	time, start     int64
	cpu, memory     uint64
	swap, ephemeral uint64
	// prevTime and prevCPU are the earlier point's Timestamp and CPU, the
	// CPU valid when prevHas has points.HasCPU.
	prevTime int64
	prevCPU  uint64
	// arrived is when the latest point reached the store.
	arrived arrival
	has     points.Has
	prevHas points.Has
	// jumps counts the points ignored in a row since the latest because
	// their time disagreed with the store's clock (see add).
	jumps uint8
}

// maxJumps is how many points in a row whose time disagrees with the latest
// are ignored before the latest is given up: the kubelet's clock really
// moved (or the latest was garbage), and the series starts over.
const maxJumps = 1

// add takes a new point that arrived at now. Duplicates (kubelets cache
// stats for 10-15 s, so the same sample is often seen twice) are ignored.
//
// Sample times come from the kubelet's clock, which may be minutes off the
// store's: rates use only differences of the kubelet's own times, so a
// kubelet whose clock is consistently ahead or behind has correct rates.
// A clock that jumps (stepped back or forward, or one garbage time) is
// told by how far the sample time advanced against how long the store
// waited for the point: when the two differ by more than tolerance (unit:
// nanoseconds), covering the kubelet's stats cache and the scrape's
// latency, the point is an outlier and ignored, so one garbage time changes
// nothing. The next such point in a row is believed instead: the pair starts
// over from it, so a stepped clock is followed within two points and a
// point from the future can block nothing. Within tolerance, a point older
// than the latest arrived out of order and is ignored. A step smaller than
// tolerance cannot be told from jitter and skews one window's rate.
//
// A container restarted only when its new start time lies after the latest
// sample, or when its cumulative CPU went down; then the pair starts over.
// Any other change of start time is the same container: /metrics/resource
// writes start times with sub-second precision and /stats/summary in whole
// seconds, and kwok reports the seconds since the pod started, which grow
// on every scrape. A start time after the new sample's own time is not
// believed (no container is sampled before it starts): only the counter
// tells then. When a restart's start time lies between the two samples,
// the start itself serves as the earlier point with zero CPU, so a
// restarted container has a rate at once.
func (s *series) add(p points.Point, now arrival, tolerance int64) {
	if s.time == 0 {
		s.setLatest(p, now)
		return
	}
	if p.Timestamp == s.time {
		return
	}
	waited := (int64(now) - int64(s.arrived)) * int64(time.Second)
	// In floating point: garbage times near the ends of int64 would
	// overflow a difference of differences; 30 s against 2^63 ns keeps
	// ample precision.
	if math.Abs(float64(p.Timestamp)-float64(s.time)-float64(waited)) > float64(tolerance) {
		if s.jumps < maxJumps {
			s.jumps++
			return
		}
		s.prevTime, s.prevCPU, s.prevHas = 0, 0, 0
		s.setLatest(p, now)
		return
	}
	if p.Timestamp < s.time {
		return
	}
	restarted := p.StartTime > s.time && p.StartTime <= p.Timestamp
	reset := p.Has&points.HasCPU != 0 && s.has&points.HasCPU != 0 && p.CPU < s.cpu
	switch {
	case restarted && p.StartTime < p.Timestamp:
		s.prevTime, s.prevCPU, s.prevHas = p.StartTime, 0, points.HasCPU
	case restarted || reset:
		s.prevTime, s.prevCPU, s.prevHas = 0, 0, 0
	default:
		s.prevTime, s.prevCPU, s.prevHas = s.time, s.cpu, s.has
	}
	s.setLatest(p, now)
}

func (s *series) setLatest(p points.Point, now arrival) {
	s.time, s.start, s.cpu, s.memory, s.has = p.Timestamp, p.StartTime, p.CPU, p.Memory, p.Has
	s.swap, s.ephemeral = p.Swap, p.EphemeralStorage
	s.arrived, s.jumps = now, 0
}

// usage is what a series serves.
type usage struct {
	// nanoCores is the CPU rate. Unit: nanocores.
	nanoCores uint64
	// memory is the latest working set. Unit: bytes.
	memory uint64
	// swap and ephemeral are the latest swap and ephemeral-storage usage,
	// valid when has holds points.HasSwap and points.HasEphemeralStorage.
	// Unit: bytes.
	swap, ephemeral uint64
	has             points.Has
	// timestamp is the latest sample's time and window the time between the
	// two samples. Unit: nanoseconds.
	timestamp, window int64
}

// usage returns the rate and memory of the series; ok is false when the
// pair is incomplete or does not give a believable rate. epoch is the Unix
// time of arrival 0 (unit: nanoseconds). The timestamp is the latest
// sample's, but never later than when it arrived: a kubelet whose clock is
// ahead is served at its arrival, never "from the future"; the window is
// the kubelet's own.
func (s *series) usage(epoch int64) (u usage, ok bool) {
	if s.prevTime == 0 || s.time == 0 {
		return u, false
	}
	if s.prevHas&points.HasCPU == 0 || s.has&points.HasCPU == 0 || s.has&points.HasMemory == 0 {
		return u, false
	}
	window := s.time - s.prevTime
	if window <= 0 || s.cpu < s.prevCPU {
		return u, false
	}
	rate := float64(s.cpu-s.prevCPU) / float64(window) * 1e9
	if rate > maxNanoCores || s.memory > math.MaxInt64 {
		return u, false
	}
	ts := min(s.time, epoch+int64(s.arrived)*int64(time.Second))
	u = usage{nanoCores: uint64(math.Round(rate)), memory: s.memory, timestamp: ts, window: window}
	// Quantities are int64: a larger value is damage and is not served,
	// as a working set past it hides the whole series.
	if s.has&points.HasSwap != 0 && s.swap <= math.MaxInt64 {
		u.swap, u.has = s.swap, u.has|points.HasSwap
	}
	if s.has&points.HasEphemeralStorage != 0 && s.ephemeral <= math.MaxInt64 {
		u.ephemeral, u.has = s.ephemeral, u.has|points.HasEphemeralStorage
	}
	return u, true
}

// points counts the points held.
func (s *series) points() int {
	n := 0
	if s.prevTime != 0 {
		n++
	}
	if s.time != 0 {
		n++
	}
	return n
}
