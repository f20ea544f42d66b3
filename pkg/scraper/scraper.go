package scraper

import (
	"context"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

// ReasonSkipped labels a node that was not given its chance in a cycle:
// no slot was free to start it before the cycle ended, or the cycle ended
// while its request was still within its timeout.
const ReasonSkipped = "skipped"

// ReasonSlow labels a node whose request was given up after half the
// timeout because other nodes were waiting for its slot; it is tried with
// the full timeout in the slow lane from the next cycle on.
const ReasonSlow = "slow"

// Config tunes a Scraper. Zero values are replaced by the defaults noted.
type Config struct {
	// Resolution is the time between the starts of two cycles; a cycle never
	// runs longer than this.
	Resolution time.Duration
	// Timeout bounds one node's request, from the moment it starts.
	Timeout time.Duration
	// Parallelism is the number of request slots of the fast lane (see
	// the package doc); slow nodes may use those left idle once every
	// fast node of a cycle has started. Default 64.
	Parallelism int
	// SlowParallelism is the number of request slots the slow lane has
	// of its own, besides the fast lane's slots it may borrow once every
	// fast node of a cycle has started. At most Parallelism +
	// SlowParallelism requests are in flight, so at most that many
	// response bodies are decoded at once. Default Parallelism/16, at
	// least 1.
	SlowParallelism int
	// Spread: node start offsets are spread over [0, Spread) so kubelets are
	// not all hit in one burst. Each node's offset is a hash of its name, so
	// it is scraped at the same phase every cycle and the window between two
	// of its points stays the resolution. Zero starts every node at once.
	Spread time.Duration
	// FollowUp, when positive, scrapes each node a second time this long
	// after its first scrape at start, so rates exist seconds after a
	// start instead of one resolution later. The first cycle starts every
	// node at once and may take up to four resolutions to reach them all.
	FollowUp time.Duration
	// Selector chooses the nodes to scrape; nil means every node.
	Selector labels.Selector
	// Classify turns a client error into a failure reason from a small fixed
	// set, for the failure metric's label. Nil labels every failure "other".
	Classify func(error) string
	// Observer, when set, is told of each node's failures and recoveries
	// (see NodeObserver).
	Observer NodeObserver
}

// Result summarises one cycle.
type Result struct {
	Nodes, Succeeded, Failed, Skipped int
	Duration                          time.Duration
}

// Scraper scrapes all selected nodes once per resolution.
type Scraper struct {
	cfg    Config
	nodes  NodeLister
	client Client
	// recycler is client when it takes batches back, else nil.
	recycler Recycler
	sink     Sink
	metrics  *Metrics
	clock    Clock

	// lastCycle is the end of the last completed cycle, in Unix nanoseconds.
	lastCycle atomic.Int64
	// cyclesEnded counts the cycles that ended; lastNodes is how many
	// nodes the last of them scraped or tried to.
	cyclesEnded, lastNodes atomic.Int64

	mu sync.Mutex
	// nodeStates holds what the scraper knows of each node it scraped
	// (its lane, rotation and failure), for the nodes listed by the last
	// cycle. Guarded by mu.
	nodeStates map[string]*nodeState
	// cycles counts the cycles started. Guarded by mu.
	cycles uint64
	// forgotten holds the nodes deleted since the running cycle began to
	// list nodes: the list may predate their deletion. Guarded by mu.
	forgotten map[string]struct{}
}

// New returns a Scraper. m may be nil in tests that do not read metrics.
func New(cfg Config, nodes NodeLister, client Client, sink Sink, m *Metrics, clk Clock) *Scraper {
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 64
	}
	if cfg.SlowParallelism <= 0 {
		cfg.SlowParallelism = max(cfg.Parallelism/16, 1)
	}
	if cfg.Selector == nil {
		cfg.Selector = labels.Everything()
	}
	if cfg.Classify == nil {
		cfg.Classify = func(error) string { return "other" }
	}
	r, _ := client.(Recycler)
	return &Scraper{cfg: cfg, nodes: nodes, client: client, recycler: r, sink: sink, metrics: m, clock: clk,
		nodeStates: map[string]*nodeState{}, forgotten: map[string]struct{}{}}
}

// startupCycles is how many resolutions the first cycle after a start may
// take: it scrapes every node once (each request still bounded by the
// timeout) rather than leaving nodes for a later cycle when the first TLS
// handshakes to thousands of kubelets take longer than one resolution.
const startupCycles = 4

// Run scrapes at once, follows up on each node FollowUp after its first
// scrape, then scrapes every resolution from the end of those two cycles,
// until ctx is done.
func (s *Scraper) Run(ctx context.Context) {
	var mu sync.Mutex
	firstDone := map[string]time.Time{}
	res := s.scrapePlanned(ctx, plan{
		deadline:         startupCycles * s.cfg.Resolution,
		giveUpOnEvidence: true,
		done: func(node string, at time.Time) {
			mu.Lock()
			firstDone[node] = at
			mu.Unlock()
		},
	})
	s.logStartCycle("first", res)
	if s.cfg.FollowUp > 0 {
		// Each node's second scrape comes FollowUp after its own first
		// one, so its two samples are at least that far apart however long
		// the first cycle took; nodes the first cycle missed go at once.
		followStart := s.clock.Now()
		res = s.scrapePlanned(ctx, plan{
			deadline: s.cfg.Resolution,
			giveUp:   true,
			offset: func(node string) time.Duration {
				mu.Lock()
				at, ok := firstDone[node]
				mu.Unlock()
				if !ok {
					return 0
				}
				return max(at.Add(s.cfg.FollowUp).Sub(followStart), 0)
			},
		})
		s.logStartCycle("follow-up", res)
	}
	// The regular cycles start one resolution after the start-up ones
	// end, not at once: a tick left over from a long start-up would scrape
	// every node again seconds after its follow-up, while the server is
	// at its busiest (at 9,900 nodes that cycle could not finish).
	ticker := s.clock.NewTicker(s.cfg.Resolution)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
		s.logCycle(s.Scrape(ctx))
	}
}

// logStartCycle logs the two start-up cycles at the default level: how
// long a started replica took to know every node is worth an operator's
// eye; later cycles are logged at -v=1.
func (s *Scraper) logStartCycle(which string, res Result) {
	klog.InfoS("Start-up scrape cycle finished", "cycle", which, "nodes", res.Nodes, "succeeded", res.Succeeded,
		"failed", res.Failed, "skipped", res.Skipped, "duration", res.Duration)
}

func (s *Scraper) logCycle(res Result) {
	klog.V(1).InfoS("Scrape cycle finished", "nodes", res.Nodes, "succeeded", res.Succeeded,
		"failed", res.Failed, "skipped", res.Skipped, "duration", res.Duration)
}

// LastCycle returns when the last cycle ended; zero before the first.
func (s *Scraper) LastCycle() time.Time {
	n := s.lastCycle.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// warmCycles is how many cycles must end before every node that answered
// in each has rates: two points need two cycles (the start-up cycle and its
// follow-up, or the first regular cycle when there is no follow-up).
const warmCycles = 2

// Warm reports whether the start-up cycle and the one after it have ended,
// so every node that answered both has rates, and how many nodes the last
// cycle selected (zero when no node exists or the selector matches none).
func (s *Scraper) Warm() (warm bool, nodes int) {
	return s.cyclesEnded.Load() >= warmCycles, int(s.lastNodes.Load())
}

// Scrape runs one cycle over every selected node and returns when all
// requests have finished or the cycle's time (one resolution) is up.
// Cycles must not overlap: Scrape must not be called while Run runs or
// another Scrape has not returned.
func (s *Scraper) Scrape(ctx context.Context) Result {
	spread := s.cfg.Spread
	return s.scrapePlanned(ctx, plan{
		deadline: s.cfg.Resolution,
		offset:   func(node string) time.Duration { return offset(node, spread) },
		giveUp:   true,
	})
}

// ForgetNode drops what the scraper and the sink hold of a deleted node:
// its state, its self-metric series and its points. A request to the node
// still in flight lands nowhere, and the node is not scraped again until
// a cycle that starts after the call lists it (a node of the same name
// added again).
func (s *Scraper) ForgetNode(node string) {
	s.mu.Lock()
	if st, ok := s.nodeStates[node]; ok {
		st.gone = true
		delete(s.nodeStates, node)
	}
	s.forgotten[node] = struct{}{}
	s.mu.Unlock()
	// Every result landing from now on sees gone; those that landed
	// before are removed here.
	if s.metrics != nil {
		s.metrics.ForgetNode(node)
	}
	s.sink.Forget(node)
}

// slot is the granularity of node start times within a spread: nodes that
// hash into one slot start together, so the process wakes a few times a
// second for a burst of requests rather than once per node (at 5,000
// nodes, 333 separate wake-ups a second, each paying for parking and
// unparking threads).
const slot = 250 * time.Millisecond

// offset places a node in [0, spread) by a hash of its name, at the start
// of one of the spread's slots.
func offset(node string, spread time.Duration) time.Duration {
	if spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	slots := uint64(max(spread/slot, 1))
	return time.Duration(h.Sum64()%slots) * (spread / time.Duration(slots))
}
