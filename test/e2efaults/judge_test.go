package e2efaults

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// judge holds what nodes and pods should show while the scenarios judge
// the snapshots of a window. Each check reports at most maxReports
// problems, so one broken node does not bury the others.
type judge struct {
	t           *testing.T
	nodes, pods map[string]expectation
	// cpuPercent is how far a CPU reading may be off; 0 means 5.
	cpuPercent int64
}

// closeCPU: within the judge's percentage, or 3m.
func (j judge) closeCPU(got, want int64) bool {
	p := j.cpuPercent
	if p == 0 {
		p = 5
	}
	d := max(got-want, want-got)
	return d*100 <= want*p || d <= 3
}

const maxReports = 8

// reporter counts one check's problems.
type reporter struct {
	t    *testing.T
	what string
	n    int
}

func (r *reporter) errorf(format string, a ...any) {
	r.t.Helper()
	r.n++
	if r.n <= maxReports {
		r.t.Errorf("%s: %s", r.what, fmt.Sprintf(format, a...))
	}
}

func (r *reporter) done() {
	r.t.Helper()
	if r.n > maxReports {
		r.t.Errorf("%s: %d more problems", r.what, r.n-maxReports)
	}
}

// served checks that every node of names and every pod of pods are in
// every snapshot, the typed ones and kubectl top's, with their known usage,
// a timestamp not after the snapshot was taken and, when maxAge > 0, no
// older than maxAge. It returns the oldest node timestamp seen.
func (j judge) served(what string, api []apiSnapshot, top []topSnapshot, names, pods []string, maxAge time.Duration) time.Duration {
	j.t.Helper()
	r := &reporter{t: j.t, what: what}
	defer r.done()
	if len(api) == 0 || len(top) == 0 {
		r.errorf("no snapshots to judge (%d typed, %d kubectl top)", len(api), len(top))
	}
	var worst time.Duration
	for _, s := range api {
		if s.err != nil {
			r.errorf("typed list at %s failed: %v", clock(s.at), s.err)
			continue
		}
		for _, n := range names {
			got, ok := s.nodes[n]
			if !ok {
				r.errorf("node %s missing from the NodeMetrics list at %s (%d nodes listed)", n, clock(s.at), len(s.nodes))
				continue
			}
			worst = max(worst, s.at.Sub(got.ts))
			j.check(r, "node "+n, s.at, got, j.nodes[n], maxAge)
		}
		for _, p := range pods {
			if got, ok := s.pods[p]; !ok {
				r.errorf("pod %s missing from the PodMetrics list at %s", p, clock(s.at))
			} else {
				j.check(r, "pod "+p, s.at, got, j.pods[p], maxAge)
			}
		}
	}
	for _, s := range top {
		if s.err != nil {
			r.errorf("kubectl top at %s failed: %v", clock(s.at), s.err)
			continue
		}
		for _, n := range names {
			j.checkRow(r, "kubectl top node "+n, s, s.nodes[n], j.nodes[n])
		}
		for _, p := range pods {
			j.checkRow(r, "kubectl top pod "+p, s, s.pods[p], j.pods[p])
		}
	}
	return worst
}

func (j judge) check(r *reporter, what string, at time.Time, got sample, want expectation, maxAge time.Duration) {
	r.t.Helper()
	if !j.closeCPU(got.milliCPU, want.milliCPU) || got.memory != want.memory {
		r.errorf("%s at %s: %dm, %d bytes; want %dm (within %d%%), %d bytes", what, clock(at), got.milliCPU, got.memory, want.milliCPU, max(j.cpuPercent, 5), want.memory)
	}
	if got.ts.After(at) {
		r.errorf("%s at %s: timestamp %s is in the future", what, clock(at), clock(got.ts))
	}
	if maxAge > 0 && at.Sub(got.ts) > maxAge {
		r.errorf("%s at %s: timestamp %s is %v old, want at most %v", what, clock(at), clock(got.ts), at.Sub(got.ts).Round(time.Second), maxAge)
	}
}

func (j judge) checkRow(r *reporter, what string, s topSnapshot, got topRow, want expectation) {
	r.t.Helper()
	switch {
	case got == topRow{}:
		r.errorf("%s at %s: not listed:\n%s", what, clock(s.at), s.out)
	case got.unknown:
		r.errorf("%s at %s: <unknown>", what, clock(s.at))
	case !j.closeCPU(got.milliCPU, want.milliCPU) || got.memoryMi != want.memory>>20:
		r.errorf("%s at %s: %dm %dMi, want %dm (within %d%%) %dMi", what, clock(s.at), got.milliCPU, got.memoryMi, want.milliCPU, max(j.cpuPercent, 5), want.memory>>20)
	}
}

// absent checks that no node of names and no pod of pods is served in any
// snapshot: missing from the typed lists, and in kubectl top not listed or
// <unknown>.
func (j judge) absent(what string, api []apiSnapshot, top []topSnapshot, names, pods []string) {
	j.t.Helper()
	r := &reporter{t: j.t, what: what}
	defer r.done()
	for _, s := range api {
		for _, n := range names {
			if got, ok := s.nodes[n]; ok {
				r.errorf("node %s served at %s: %+v", n, clock(s.at), got)
			}
		}
		for _, p := range pods {
			if got, ok := s.pods[p]; ok {
				r.errorf("pod %s served at %s: %+v", p, clock(s.at), got)
			}
		}
	}
	for _, s := range top {
		for _, n := range names {
			if got := s.nodes[n]; got != (topRow{}) && !got.unknown {
				r.errorf("kubectl top node shows %s at %s: %dm %dMi", n, clock(s.at), got.milliCPU, got.memoryMi)
			}
		}
		for _, p := range pods {
			if got, ok := s.pods[p]; ok {
				r.errorf("kubectl top pod shows %s at %s: %+v", p, clock(s.at), got)
			}
		}
	}
}

// noFutureTimestamps checks every node and pod of every snapshot.
func (j judge) noFutureTimestamps(api []apiSnapshot) {
	j.t.Helper()
	r := &reporter{t: j.t, what: "timestamps"}
	defer r.done()
	for _, s := range api {
		for n, got := range s.nodes {
			if got.ts.After(s.at) {
				r.errorf("node %s at %s has timestamp %s, in the future", n, clock(s.at), clock(got.ts))
			}
		}
		for p, got := range s.pods {
			if got.ts.After(s.at) {
				r.errorf("pod %s at %s has timestamp %s, in the future", p, clock(s.at), clock(got.ts))
			}
		}
	}
}

// hpaCurrent checks that every HPA sample shows ScalingActive and the
// known utilization.
func (j judge) hpaCurrent(what string, hpa []hpaSample) {
	j.t.Helper()
	r := &reporter{t: j.t, what: what}
	defer r.done()
	if len(hpa) == 0 {
		r.errorf("no HPA samples")
	}
	for _, s := range hpa {
		if !s.active || s.utilization < webUtilization-3 || s.utilization > webUtilization+3 {
			r.errorf("HPA at %s: active %v, utilization %d%% (want %d%%): %s", clock(s.at), s.active, s.utilization, webUtilization, s.why)
		}
	}
}

// topLine is a short account of one kubectl top snapshot for the log:
// how many rows had numbers and which names were <unknown>.
func topLine(s topSnapshot) string {
	var unknown []string
	known := 0
	for n, r := range s.nodes {
		if r.unknown {
			unknown = append(unknown, n)
		} else {
			known++
		}
	}
	slices.Sort(unknown)
	return fmt.Sprintf("kubectl top node at %s: %d nodes with numbers, <unknown>: %s; kubectl top pod: %d pods",
		clock(s.at), known, strings.Join(unknown, " "), len(s.pods))
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

// loadPods names the load pods of nodes.
func loadPods(nodes ...string) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = "load-" + n
	}
	return out
}
