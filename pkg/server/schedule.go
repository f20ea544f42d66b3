package server

import (
	"time"

	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// spreadFor chooses over how much of a cycle node starts are spread: a
// quarter of the resolution, at most 5s and at most what leaves a full
// timeout before the cycle ends, so a spread never makes a cycle overrun.
func spreadFor(resolution, timeout time.Duration) time.Duration {
	spread := min(resolution/4, 5*time.Second)
	if room := resolution - timeout; room < spread {
		spread = max(room, 0)
	}
	return spread
}

// followUpFor is how long after a node's first scrape its second one runs,
// so a started or failed-over replica serves rates within seconds rather
// than one resolution later: a sixth of the resolution, at most 2s.
// /metrics/resource (what auto asks first) stamps samples to the
// millisecond, so a 2s window gives a true rate; a node on the summary
// fallback (whole-second stamps) gets a rougher first rate for one cycle.
func followUpFor(resolution time.Duration) time.Duration {
	return min(resolution/6, 2*time.Second)
}

// clockToleranceFor is how far apart a kubelet's clock and ours may move
// between two scrapes before the store takes it for a clock step: the
// kubelet's stats cache (up to 15 s) plus the spread of one request's
// latency (up to the timeout), at least the store's default.
func clockToleranceFor(timeout time.Duration) time.Duration {
	return max(storage.DefaultClockTolerance, timeout+20*time.Second)
}
