package storage

import (
	"math"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// maxNanoCores caps a believable rate: a million cores. A larger rate comes
// from damaged counters, not from a machine, and is not served.
const maxNanoCores = 1e6 * 1e9

// series is the latest two points of one node or container. A zero
// Timestamp means the point is absent.
type series struct {
	prev, latest points.Point
}

// add takes a new point. Duplicates (kubelets cache stats for 10-15 s, so the
// same sample is often seen twice) and points older than the latest are
// ignored. A restart (new start time) or a counter reset restarts the pair;
// when the new start time lies between the two samples, the start itself
// serves as the previous point with zero CPU, so a restarted container has a
// rate at once.
func (s *series) add(p points.Point) {
	l := s.latest
	if l.Timestamp == 0 {
		s.latest = p
		return
	}
	if p.Timestamp <= l.Timestamp {
		return
	}
	restarted := p.StartTime != 0 && l.StartTime != 0 && p.StartTime != l.StartTime
	reset := p.Has&points.HasCPU != 0 && l.Has&points.HasCPU != 0 && p.CPU < l.CPU
	if restarted || reset {
		s.prev = points.Point{}
		if p.StartTime > l.Timestamp && p.StartTime < p.Timestamp {
			s.prev = points.Point{Timestamp: p.StartTime, StartTime: p.StartTime, Has: points.HasCPU}
		}
		s.latest = p
		return
	}
	s.prev, s.latest = l, p
}

// usage is what a series serves.
type usage struct {
	// nanoCores is the CPU rate. Unit: nanocores.
	nanoCores uint64
	// memory is the latest working set. Unit: bytes.
	memory uint64
	// timestamp is the latest sample's time and window the time between the
	// two samples. Unit: nanoseconds.
	timestamp, window int64
}

// usage returns the rate and memory of the series; ok is false when the
// pair is incomplete or does not give a believable rate.
func (s *series) usage() (u usage, ok bool) {
	p, l := s.prev, s.latest
	if p.Timestamp == 0 || l.Timestamp == 0 {
		return u, false
	}
	if p.Has&points.HasCPU == 0 || l.Has&points.HasCPU == 0 || l.Has&points.HasMemory == 0 {
		return u, false
	}
	window := l.Timestamp - p.Timestamp
	if window <= 0 || l.CPU < p.CPU {
		return u, false
	}
	rate := float64(l.CPU-p.CPU) / float64(window) * 1e9
	if rate > maxNanoCores || l.Memory > math.MaxInt64 {
		return u, false
	}
	return usage{nanoCores: uint64(math.Round(rate)), memory: l.Memory, timestamp: l.Timestamp, window: window}, true
}

// points counts the points held.
func (s *series) points() int {
	n := 0
	if s.prev.Timestamp != 0 {
		n++
	}
	if s.latest.Timestamp != 0 {
		n++
	}
	return n
}
