package storage

import (
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// Options configure a Store.
type Options struct {
	// StaleAfter: a node not scraped successfully for longer than this is
	// dropped with its pods by Prune; 0 never drops by age. The server
	// leaves it 0: its scraper counts failed requests instead and calls
	// Forget (scraper.Config.StaleAfter), because age also counts the
	// cycles in which a node was not tried.
	StaleAfter time.Duration
	// DropZeroUsagePods hides a pod any of whose containers reports a
	// cumulative CPU time or a working set of exactly zero in its latest
	// point, as upstream metrics-server does. A container whose CPU rate is
	// zero but whose counter is not (an idle sidecar) is served either way.
	// By default such pods are served.
	DropZeroUsagePods bool
	// ClockTolerance is how far a kubelet's sample times may advance more
	// or less than the store's clock between two of its points before the
	// store takes it for a jump of the kubelet's clock rather than jitter
	// (the kubelet's stats cache, 10-15 s, plus the spread of scrape
	// latencies, up to the request timeout). A kubelet clock that is
	// merely ahead or behind is no jump. 0 means DefaultClockTolerance.
	ClockTolerance time.Duration
	// BoundNode, if set, tells which node a pod is bound to (ok false:
	// not known). A batch's claim to a pod bound to another node is then
	// ignored, and the bound node's claim wins over the node holding the
	// pod. Nil means no node is known (the server's pod informer carries
	// metadata only). It is called with the store's lock held, only for a
	// pod new to the store or reported by a second node, and must not call
	// the store.
	BoundNode func(namespace, name string) (node string, ok bool)
	// Clock is the time source; nil means the real clock.
	Clock clock.PassiveClock
}

// DefaultClockTolerance covers a 15 s stats cache and a 10 s request
// timeout with room to spare.
const DefaultClockTolerance = 30 * time.Second

// Store holds the points. It is safe for concurrent use: exported methods
// take mu; unexported helpers assume it is held.
type Store struct {
	opts Options
	// started is when the store was made (with the clock's monotonic
	// reading, if any); epoch is that time truncated to a whole second, the
	// Unix time of arrival 0 (unit: nanoseconds), and sinceEpoch the
	// difference between the two.
	started    time.Time
	epoch      int64
	sinceEpoch time.Duration

	mu    sync.RWMutex
	nodes map[string]*nodeEntry
	pods  map[podKey]*podEntry
	// gen counts the batches stored, of every node; a pod seen in the
	// current batch carries it. One count for all nodes: with one a node,
	// a pod moving in from another node could carry the same number and
	// look listed already.
	gen uint64
}

type podKey struct {
	namespace, name string
}

type nodeEntry struct {
	name   string
	series series
	// stored is when the node's last batch arrived. Unit: Unix nanoseconds.
	stored int64
	// pods are the entries of the pods in the node's last batch (pointers:
	// 8 bytes a pod where a key is 32). An entry whose node is no longer
	// this one has moved and is not this node's.
	pods []*podEntry
	// spare is the previous pods slice, reused by the next batch.
	spare []*podEntry
	// disputed counts the pods of the node's last batch that another
	// node holds, whose points were ignored.
	disputed int
}

type podEntry struct {
	key  podKey
	node string
	// seen is the Store.gen of the last batch that listed the pod.
	seen       uint64
	containers []containerEntry
}

type containerEntry struct {
	name   string
	series series
}

// NewStore returns an empty Store.
func NewStore(o Options) *Store {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.ClockTolerance <= 0 {
		o.ClockTolerance = DefaultClockTolerance
	}
	started := o.Clock.Now()
	epoch := started.Truncate(time.Second)
	return &Store{
		opts: o, started: started, epoch: epoch.UnixNano(), sinceEpoch: started.Sub(epoch),
		nodes: map[string]*nodeEntry{}, pods: map[podKey]*podEntry{},
	}
}

// arrivalNow is the arrival of a point stored now: the whole seconds since
// the epoch, on the clock's monotonic reading where it has one, so a step
// of the server's own clock does not look like one of a kubelet's.
func (s *Store) arrivalNow() arrival {
	d := s.opts.Clock.Since(s.started) + s.sinceEpoch
	return arrival(min(max(d/time.Second, 0), math.MaxUint32))
}

// Store ingests one node's complete scrape. It replaces what was known about
// the node's pods: a pod of this node absent from b is dropped.
//
// A pod belongs to the node that holds it: the first node to report it,
// for as long as that node's batches keep reporting it and until the node
// is pruned or forgotten. Another node's claim to it is ignored and
// counted (Disputed), so one kubelet can neither take over, hide nor fake
// another's pods, and a pod two kubelets report does not flap between
// them. A pod deleted and recreated on another node moves once its old
// node's batch no longer lists it (or the old node is pruned or
// forgotten). With Options.BoundNode, the node a pod is bound to wins
// instead; without it, what is not checked is which node reports a pod
// first.
//
// It keeps nothing of b but the node's name: once it returns, b's slices
// and pod and container names may be reused.
func (s *Store) Store(b *points.Batch) {
	now := s.opts.Clock.Now().UnixNano()
	s.mu.Lock()
	d := s.store(b, now)
	s.mu.Unlock()
	d.log(b.Node)
}

// dispute is what one batch claimed of pods another node holds.
type dispute struct {
	// before and now are the counts of the node's previous batch and this
	// one; pod names one of this batch's and owner the node it belongs to
	// (holds it, or it is bound to).
	before, now int
	pod         podKey
	owner       string
}

// changed reports whether the node's disputes started or ended with this
// batch.
func (d dispute) changed() bool { return (d.before == 0) != (d.now == 0) }

// log reports a node's disputes when they start and when they end, at V(2),
// not every cycle.
func (d dispute) log(node string) {
	switch {
	case !d.changed():
	case d.now > 0:
		klog.V(2).InfoS("Ignoring pods the node reports that another node holds; check the node's kubelet (or the pods' placement)",
			"node", node, "pods", d.now, "pod", klog.KRef(d.pod.namespace, d.pod.name), "owner", d.owner)
	default:
		klog.V(2).InfoS("The node no longer reports pods another node holds", "node", node)
	}
}

// boundHere reports whether BoundNode says p, which another node holds, is
// bound to node: only then does node take it over.
func (s *Store) boundHere(node string, p *podEntry) bool {
	if s.opts.BoundNode == nil {
		return false
	}
	bound, ok := s.opts.BoundNode(p.key.namespace, p.key.name)
	return ok && bound == node
}

// boundElsewhere returns the node BoundNode says a pod new to the store is
// bound to when that is not node, else "".
func (s *Store) boundElsewhere(node string, key podKey) string {
	if s.opts.BoundNode == nil {
		return ""
	}
	if bound, ok := s.opts.BoundNode(key.namespace, key.name); ok && bound != node {
		return bound
	}
	return ""
}

// store is Store with mu held.
func (s *Store) store(b *points.Batch, now int64) dispute {
	n, ok := s.nodes[b.Node]
	if !ok {
		n = &nodeEntry{name: b.Node}
		s.nodes[b.Node] = n
	}
	n.stored = now
	s.gen++
	arrived, tolerance := s.arrivalNow(), int64(s.opts.ClockTolerance)
	if b.NodePoint.Has != 0 {
		n.series.add(b.NodePoint, arrived, tolerance)
	}
	nodeName := n.name // the Store's own copy, not the batch's

	d := dispute{before: n.disputed}
	old := n.pods
	fresh := n.spare[:0]
	for i := range b.Pods {
		bp := &b.Pods[i]
		key := podKey{bp.Namespace, bp.Name}
		p, ok := s.pods[key]
		owner := "" // the node the pod belongs to if not this one
		switch {
		case !ok:
			owner = s.boundElsewhere(nodeName, key)
		case p.node != nodeName && !s.boundHere(nodeName, p):
			owner = p.node
		}
		if owner != "" {
			d.now++
			d.pod, d.owner = key, owner
			continue
		}
		switch {
		case !ok:
			p = &podEntry{key: ownKey(key), node: nodeName}
			s.pods[p.key] = p // the store's own copy of the key, not the batch's
		case p.node != nodeName:
			// Bound here: it was deleted and recreated, or the holder
			// reported it wrongly. Its old points describe other
			// containers.
			s.removeFromNode(p)
			p.node = nodeName
			p.containers = p.containers[:0]
		}
		if p.seen == s.gen {
			continue // the kubelet listed it twice; keep the first
		}
		p.seen = s.gen
		p.containers = mergeContainers(p.containers, bp.Containers, arrived, tolerance)
		fresh = append(fresh, p)
	}
	for _, p := range old {
		if p.node == nodeName && p.seen != s.gen && s.pods[p.key] == p {
			delete(s.pods, p.key)
		}
	}
	// The two slices take turns, so a steady node allocates none; the
	// spare one is cleared so it keeps no dropped pod alive.
	clear(old)
	n.pods, n.spare = fresh, old[:0]
	n.disputed = d.now
	return d
}

// ownKey copies a batch's pod key into one string of the store's own: a
// decoder may hand out names that share memory with the rest of its body,
// which the store must not keep alive.
func ownKey(k podKey) podKey {
	var b strings.Builder
	b.Grow(len(k.namespace) + len(k.name))
	b.WriteString(k.namespace)
	b.WriteString(k.name)
	joined := b.String()
	return podKey{joined[:len(k.namespace)], joined[len(k.namespace):]}
}

// mergeContainers adds the batch's points to the series of the same
// container names, in the batch's order. Containers absent from the batch are
// dropped. When the names are unchanged (the usual case) it works in place.
func mergeContainers(have []containerEntry, got []points.Container, now arrival, tolerance int64) []containerEntry {
	same := len(have) == len(got)
	for i := 0; same && i < len(got); i++ {
		same = have[i].name == got[i].Name
	}
	if same {
		for i := range got {
			have[i].series.add(got[i].Point, now, tolerance)
		}
		return have
	}
	out := make([]containerEntry, 0, len(got))
	for i := range got {
		c := containerEntry{name: strings.Clone(got[i].Name)}
		for j := range have {
			if have[j].name == got[i].Name {
				c = have[j]
				break
			}
		}
		c.series.add(got[i].Point, now, tolerance)
		out = append(out, c)
	}
	return out
}

// removeFromNode drops p's key from the pod list of the node that had it.
func (s *Store) removeFromNode(p *podEntry) {
	n, ok := s.nodes[p.node]
	if !ok {
		return
	}
	for i, q := range n.pods {
		if q == p {
			n.pods = slices.Delete(n.pods, i, i+1) // zeroes the freed slot
			return
		}
	}
}

// Prune drops the nodes, with their pods, whose last batch is older than
// StaleAfter; nothing when StaleAfter is 0.
func (s *Store) Prune() {
	if s.opts.StaleAfter <= 0 {
		return
	}
	limit := s.opts.Clock.Now().Add(-s.opts.StaleAfter).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range s.nodes {
		if n.stored < limit {
			s.forget(name, n)
		}
	}
}

// Forget drops a deleted node and its pods now.
func (s *Store) Forget(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[node]; ok {
		s.forget(node, n)
	}
}

func (s *Store) forget(name string, n *nodeEntry) {
	for _, p := range n.pods {
		if p.node == name && s.pods[p.key] == p {
			delete(s.pods, p.key)
		}
	}
	delete(s.nodes, name)
}

// Disputed returns the number of pods that nodes' latest batches reported
// but another node holds (see Store), whose points were ignored.
func (s *Store) Disputed() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	total := 0
	for _, n := range s.nodes {
		total += n.disputed
	}
	return total
}

// Points returns the number of points held for nodes and for containers.
func (s *Store) Points() (nodes, containers int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range s.nodes {
		nodes += n.series.points()
	}
	for _, p := range s.pods {
		for i := range p.containers {
			containers += p.containers[i].series.points()
		}
	}
	return nodes, containers
}
