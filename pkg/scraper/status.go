package scraper

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Locator is a Client that can say where it reaches a node: the kubelet's
// host:port and the path it asks (the one it is on, in a mode that falls
// back from one endpoint to another). An empty address means the node has
// none the client would use. NodeStatus uses it when the Client has it.
type Locator interface {
	Locate(node *corev1.Node) (address, endpoint string)
}

// NodeObserver is told of a node's failed requests and of the first
// success after them, for Node events. Its methods are called from the
// scraping goroutines, outside every lock of the scraper, only on a
// failure or on a recovery (never for the regular successes of a healthy
// node), and must return quickly. A request the scraper's stop cut short
// is neither: it says nothing of the node.
type NodeObserver interface {
	// NodeFailed: the node's request failed, the failures-th in a row
	// (1 for the first); reason is the failure's class (Config.Classify).
	NodeFailed(node *corev1.Node, failures int, reason string, err error)
	// NodeRecovered: the node was scraped after failures failed requests
	// in a row.
	NodeRecovered(node *corev1.Node, failures int)
}

// NodeStatus is what the scraper knows of one node's scrapes: a snapshot,
// copied out of the scraper.
type NodeStatus struct {
	// Node is the node's name.
	Node string
	// Address is the kubelet's host:port and Endpoint the path the client
	// asks, as the Client locates them now (empty without a Locator, and
	// Address empty when the node has no usable address).
	Address, Endpoint string
	// LastAttempt is when the last request to the node started; zero when
	// none has yet.
	LastAttempt time.Time
	// LastSuccess is when the last successful answer arrived, LastFailure
	// when the last failed request ended; zero when none has.
	LastSuccess, LastFailure time.Time
	// Duration is how long the last request took, from its start to its
	// decoded answer or its failure.
	Duration time.Duration
	// ConsecutiveFailures counts the failed requests since the last
	// success; requests cut short by the scraper's stop do not count.
	ConsecutiveFailures int
	// Reason is the class of the last failure (see Config.Classify)
	// while the node is failing, "" when its last request succeeded.
	Reason string
	// LastError is the last failure's error, kept after a success (then
	// LastFailure tells how old it is); nil when the node never failed.
	LastError error
	// Slow: the node's last request took half the timeout or more. It
	// is scraped as every other node (every node has a request of its
	// own each cycle); it tells an operator the node is near its
	// timeout.
	Slow bool
	// Skipped counts the cycles in a row that started no request to the
	// node because its previous one was still in flight (a request
	// lasts at most the timeout, less than the resolution, so this
	// stays 0 but when the process is starved).
	Skipped int
}

// Lane names the node's speed as the status page shows it: "slow" when
// Slow, else "fast". Both are scraped the same way.
func (n *NodeStatus) Lane() string {
	if n.Slow {
		return "slow"
	}
	return "fast"
}

// scrapeRecord is the part of nodeState that NodeStatus reads. Times are
// Unix nanoseconds, zero for never. Guarded by Scraper.mu.
type scrapeRecord struct {
	node                                 *corev1.Node
	lastAttempt, lastSuccess, lastFailed int64
	held                                 time.Duration
	failures, busy                       uint32
	lastErr                              error
}

// record notes an attempt that ran its course on st, with mu held, and
// returns the failures in a row before and after it. It costs a few
// stores: it runs for every node in every cycle.
func (st *nodeState) record(node *corev1.Node, a attempt) (before, after uint32) {
	r := &st.rec
	before = r.failures
	r.node = node
	r.busy = 0
	began := a.began.UnixNano()
	r.lastAttempt, r.held = began, a.held
	if a.err == nil {
		r.failures = 0
		r.lastSuccess = began + int64(a.held)
	} else {
		r.failures++
		r.lastFailed = began + int64(a.held)
		r.lastErr = a.err
	}
	return before, r.failures
}

// tell passes a recorded attempt to the observer, if any: a failure, or
// the first success after failures. Called without mu.
func (s *Scraper) tell(node *corev1.Node, a attempt, reason string, before, after uint32) {
	o := s.cfg.Observer
	if o == nil {
		return
	}
	switch {
	case a.err != nil:
		o.NodeFailed(node, int(after), reason, a.err)
	case before > 0:
		o.NodeRecovered(node, int(before))
	}
}

// NodeStatuses returns the status of every node the last cycle listed,
// by name; with failingOnly, only those whose last request that ran its
// course failed.
func (s *Scraper) NodeStatuses(failingOnly bool) []NodeStatus {
	type found struct {
		status NodeStatus
		node   *corev1.Node
	}
	s.mu.Lock()
	all := make([]found, 0, len(s.nodeStates))
	for name, st := range s.nodeStates {
		if failingOnly && st.failing == "" {
			continue
		}
		all = append(all, found{st.snapshot(name, s.cfg.Timeout), st.rec.node})
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].status.Node < all[j].status.Node })
	out := make([]NodeStatus, len(all))
	for i := range all {
		out[i] = all[i].status
		s.locate(&out[i], all[i].node)
	}
	return out
}

// NodeStatus returns one node's status; ok is false when the last cycle
// did not list the node (it does not exist, is not selected, or was
// created since).
func (s *Scraper) NodeStatus(name string) (_ NodeStatus, ok bool) {
	s.mu.Lock()
	st, ok := s.nodeStates[name]
	var (
		n    NodeStatus
		node *corev1.Node
	)
	if ok {
		n, node = st.snapshot(name, s.cfg.Timeout), st.rec.node
	}
	s.mu.Unlock()
	if ok {
		s.locate(&n, node)
	}
	return n, ok
}

// snapshot copies st out; mu is held. timeout is the request timeout.
func (st *nodeState) snapshot(name string, timeout time.Duration) NodeStatus {
	r := &st.rec
	return NodeStatus{
		Node:                name,
		LastAttempt:         unixTime(r.lastAttempt),
		LastSuccess:         unixTime(r.lastSuccess),
		LastFailure:         unixTime(r.lastFailed),
		Duration:            r.held,
		ConsecutiveFailures: int(r.failures),
		Reason:              st.failing,
		LastError:           r.lastErr,
		Slow:                r.lastAttempt != 0 && r.held >= timeout/2,
		Skipped:             int(r.busy),
	}
}

// locate fills n's address and endpoint from the Client, when it is a
// Locator, for node (nil before the node's first cycle ended). Node
// objects are the informer's, read-only: no lock is needed.
func (s *Scraper) locate(n *NodeStatus, node *corev1.Node) {
	if l, ok := s.client.(Locator); ok && node != nil {
		n.Address, n.Endpoint = l.Locate(node)
	}
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
