package scraper

import (
	"errors"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// nodeState is what the scraper remembers of a node between cycles.
// Guarded by Scraper.mu.
type nodeState struct {
	// failing is why the node's last scrape failed; "" after a success
	// and before the first scrape ends. A skip does not replace a
	// failure's reason: it says nothing new about the node.
	failing string
	// slow puts the node in the slow lane: its last request that ran its
	// course (or was cut short by the cycle's end after half the timeout)
	// held its slot for at least half the timeout.
	slow bool
	// overdue: the node was not scraped in the last cycle that tried
	// (skipped, or cut short by the cycle's end); it starts first in the
	// next, before any node at its phase.
	overdue bool
	// tried is the number of the last cycle that started a request to
	// the node in the slow lane; the slow lane takes its least recently
	// tried nodes first.
	tried uint64
	// listed is the number of the last cycle that listed the node.
	listed uint64
	// gone: the node was deleted (ForgetNode). Its results are dropped.
	gone bool
	// rec is what NodeStatus reports (status.go).
	rec scrapeRecord
}

// beginListing marks the start of a cycle's node listing: nodes deleted
// from now on until admit are left out of the cycle.
func (s *Scraper) beginListing() {
	s.mu.Lock()
	clear(s.forgotten)
	s.mu.Unlock()
}

// admit starts a cycle over nodes: it splits them into the fast lane, in
// order of start, and the slow lane, least recently tried first, and
// forgets the state of nodes no longer listed. Nodes deleted since
// beginListing are left out.
func (s *Scraper) admit(nodes []*corev1.Node, p plan) (fast, slow []job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cycles++
	fast = make([]job, 0, len(nodes))
	for _, n := range nodes {
		if _, gone := s.forgotten[n.Name]; gone {
			continue
		}
		st := s.nodeStates[n.Name]
		if st == nil {
			st = &nodeState{}
			s.nodeStates[n.Name] = st
		}
		st.listed = s.cycles
		j := job{node: n, state: st}
		if st.slow {
			slow = append(slow, j)
			continue
		}
		if !st.overdue && p.offset != nil {
			j.offset = p.offset(n.Name)
		}
		fast = append(fast, j)
	}
	for name, st := range s.nodeStates {
		if st.listed != s.cycles {
			delete(s.nodeStates, name)
		}
	}
	sort.SliceStable(fast, func(a, b int) bool {
		if fast[a].offset != fast[b].offset {
			return fast[a].offset < fast[b].offset
		}
		return fast[a].state.overdue && !fast[b].state.overdue
	})
	sort.SliceStable(slow, func(a, b int) bool { return slow[a].state.tried < slow[b].state.tried })
	return fast, slow
}

// deleted reports whether j's node was deleted since its cycle began.
func (s *Scraper) deleted(j job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return j.state.gone
}

// tried notes that the slow lane starts j's request in this cycle.
func (s *Scraper) tried(j job) {
	s.mu.Lock()
	j.state.tried = s.cycles
	s.mu.Unlock()
}

// attempt is how one node fared in a cycle.
type attempt struct {
	// skipped: no request was started (no slot before the cycle's end).
	skipped bool
	// cut: the cycle ended (or the scraper stopped) while the request
	// was within its timeout.
	cut bool
	// demoted: the request was given up after half the timeout so that
	// the fast nodes waiting could have its slot.
	demoted bool
	// began is when the request started and held how long it held its
	// slot.
	began time.Time
	held  time.Duration
	batch *points.Batch
	err   error
}

type outcome int

const (
	outcomeOK outcome = iota
	outcomeFailed
	outcomeSkipped
	// outcomeDropped: the node was deleted; nothing was recorded.
	outcomeDropped
)

// errNotStarted is the error of a node skipped before its request.
var errNotStarted = errors.New("no request slot was free before the cycle ended; the node goes first in the next cycle")

// land records an attempt: the batch to the sink, the self-metrics, the
// node's failure and lane. The caller recycles the batch afterwards.
func (s *Scraper) land(j job, a attempt) outcome {
	name := j.node.Name
	reason := ""
	switch {
	case a.skipped:
		reason, a.err = ReasonSkipped, errNotStarted
	case a.cut:
		reason = ReasonSkipped
	case a.demoted:
		reason = ReasonSlow
	case a.err != nil:
		reason = s.cfg.Classify(a.err)
	}
	st := j.state

	// Recording under mu, with gone checked, is what keeps a deleted
	// node's series and points from coming back: ForgetNode sets gone
	// under mu before it removes them.
	s.mu.Lock()
	if st.gone {
		s.mu.Unlock()
		klog.V(4).InfoS("Dropped the scrape of a deleted node", "node", klog.KRef("", name))
		return outcomeDropped
	}
	out := outcomeOK
	if !a.skipped && s.metrics != nil {
		s.metrics.observeRequest(name, a.held.Seconds(), float64(a.began.Unix()), a.err == nil)
	}
	prev, wasSlow := st.failing, st.slow
	if a.err == nil {
		s.sink.Store(a.batch)
		st.failing = ""
	} else {
		out = outcomeFailed
		if a.skipped {
			out = outcomeSkipped
		}
		if s.metrics != nil {
			s.metrics.observeFailure(name, reason)
		}
		if reason != ReasonSkipped || st.failing == "" {
			st.failing = reason
		}
	}
	// A request cut short before half the timeout says nothing of the
	// node's speed; one cut later has held its slot long enough.
	if slowAfter := s.cfg.Timeout / 2; a.skipped || (a.cut && a.held < slowAfter) {
		st.overdue = true
	} else {
		st.overdue = a.cut
		st.slow = a.held >= slowAfter
	}
	failing, slow := st.failing, st.slow
	before, after := st.record(j.node, a)
	s.mu.Unlock()
	s.tell(j.node, a, reason, before, after)

	node := klog.KRef("", name)
	switch {
	case out == outcomeOK && prev != "":
		klog.InfoS("Node scraped again after failures", "node", node)
	case out == outcomeOK:
		// Checked first: the arguments of a disabled InfoS still escape,
		// two allocations for every healthy node every cycle.
		if v := klog.V(2); v.Enabled() {
			v.InfoS("Scraped node", "node", node)
		}
	case failing != prev:
		klog.ErrorS(a.err, "Failed to scrape node", "node", node, "reason", reason)
	default:
		klog.V(4).InfoS("Node still failing", "node", node, "reason", reason, "err", a.err)
	}
	if slow != wasSlow {
		klog.V(2).InfoS("Node changes scrape lane", "node", node, "slow", slow, "held", a.held)
	}
	return out
}
