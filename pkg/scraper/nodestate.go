package scraper

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// This file holds what the scraper remembers of each node between cycles
// and how a request's outcome lands: in the sink, the self-metrics, the
// node's status and its staleness.

// nodeState is what the scraper remembers of a node between cycles.
// Guarded by Scraper.mu.
type nodeState struct {
	// failing is why the node's last request failed; "" after a success
	// and before the first request ends.
	failing string
	// inFlight: a request to the node has started and not landed yet; a
	// cycle that lists the node meanwhile does not start another.
	inFlight bool
	// listed is the number of the last cycle that listed the node.
	listed uint64
	// gone: the node was deleted (ForgetNode) or is no longer listed.
	// Its results are dropped.
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

// admit starts a cycle over nodes: it returns a job for each node but those
// whose last request is still in flight (busy counts them), in order of
// offset, and marks each job's node in flight. It forgets the nodes no
// longer listed, in the scraper and the sink. Nodes deleted since
// beginListing are left out.
func (s *Scraper) admit(nodes []*corev1.Node, p plan) (jobs []job, busy int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cycles++
	jobs = make([]job, 0, len(nodes))
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
		if st.inFlight {
			busy++
			st.rec.busy++
			continue
		}
		st.inFlight = true
		j := job{node: n, state: st}
		if p.offset != nil {
			j.offset = p.offset(n.Name)
		}
		jobs = append(jobs, j)
	}
	for name, st := range s.nodeStates {
		if st.listed != s.cycles {
			// No longer selected: its points must not be served
			// until they age out, nor its series kept.
			st.gone = true
			delete(s.nodeStates, name)
			s.sink.Forget(name)
			if s.metrics != nil {
				s.metrics.ForgetNode(name)
			}
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].offset < jobs[b].offset })
	return jobs, busy
}

// deleted reports whether j's node was deleted since its cycle began.
func (s *Scraper) deleted(j job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return j.state.gone
}

// release ends j's turn without a request (the scraper stopped, or the
// node was deleted).
func (s *Scraper) release(j job) {
	s.mu.Lock()
	j.state.inFlight = false
	s.mu.Unlock()
}

// attempt is how one request to a node fared.
type attempt struct {
	// cut: the scraper stopped while the request was within its
	// timeout.
	cut bool
	// began is when the request started and held how long it ran.
	began time.Time
	held  time.Duration
	batch *points.Batch
	err   error
}

type outcome int

const (
	outcomeOK outcome = iota
	outcomeFailed
	// outcomeCut: the scraper stopped; nothing was learnt of the node.
	outcomeCut
	// outcomeDropped: the node was deleted; nothing was recorded.
	outcomeDropped
)

// land records an attempt: the batch to the sink, the self-metrics, the
// node's failure and status, and drops a node whose failures in a row
// reach the limit from the sink. The caller recycles the batch afterwards.
func (s *Scraper) land(j job, a attempt) outcome {
	name := j.node.Name
	reason := ""
	if a.err != nil && !a.cut {
		reason = s.cfg.Classify(a.err)
	}
	st := j.state

	// Recording under mu, with gone checked, is what keeps a deleted
	// node's series and points from coming back: ForgetNode sets gone
	// under mu before it removes them.
	s.mu.Lock()
	st.inFlight = false
	if st.gone {
		s.mu.Unlock()
		klog.V(4).InfoS("Dropped the scrape of a deleted node", "node", klog.KRef("", name))
		return outcomeDropped
	}
	if a.cut {
		s.mu.Unlock()
		klog.V(4).InfoS("Node's request cut short by the scraper's stop", "node", klog.KRef("", name), "err", a.err)
		return outcomeCut
	}
	out := outcomeOK
	if s.metrics != nil {
		s.metrics.observeRequest(name, a.held.Seconds(), float64(a.began.Unix()), a.err == nil)
	}
	prev := st.failing
	if a.err == nil {
		s.sink.Store(a.batch)
		st.failing = ""
	} else {
		out = outcomeFailed
		if s.metrics != nil {
			s.metrics.observeFailure(name, reason)
		}
		st.failing = reason
	}
	failing := st.failing
	before, after := st.record(j.node, a)
	// Dropped once, when the count reaches the limit: a node failing
	// for longer has nothing left to drop.
	stale := a.err != nil && after == s.maxFailures
	if stale {
		s.sink.Forget(name)
	}
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
	if stale {
		klog.InfoS("Stopped serving the metrics of a node whose requests keep failing", "node", node, "failures", after, "reason", reason)
	}
	return out
}
