package scraper

import (
	"context"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/scraper/gate"
)

// Config tunes a Scraper. Zero values are replaced by the defaults noted.
type Config struct {
	// Resolution is the time between the starts of two cycles; a cycle never
	// runs longer than this.
	Resolution time.Duration
	// Timeout bounds one node's request, from the moment it starts.
	Timeout time.Duration
	// Parallelism is the number of response bodies read and decoded at
	// once (the decode slots of package gate): the bound on the memory
	// answers take. It does not bound the requests waiting for an
	// answer: every node's request starts at its phase. Default 64.
	Parallelism int
	// StaleAfter is about how long the last good points of a node whose
	// requests fail are still served: the node is dropped from the sink
	// (Sink.Forget) once StaleAfter/Resolution requests in a row have
	// failed (rounded down, at least 1). Cycles that start no request to
	// the node (its last one still in flight) do not count. Zero means
	// two resolutions plus the timeout: two failed requests.
	StaleAfter time.Duration
	// Spread: node start offsets are spread over [0, Spread) so kubelets are
	// not all hit in one burst. Each node's offset is a hash of its name, so
	// it is scraped at the same phase every cycle and the window between two
	// of its points stays the resolution. Zero starts every node at once.
	Spread time.Duration
	// FollowUp, when positive, scrapes each node a second time this long
	// after its first scrape at start, so rates exist seconds after a
	// start instead of one resolution later. The first cycle starts every
	// node at once; each request has the timeout.
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
	// Nodes is how many nodes the cycle listed; Succeeded and Failed
	// count its requests that ended within it.
	Nodes, Succeeded, Failed int
	// InFlight counts its requests still running when it ended: they
	// land when they end, within their timeout.
	InFlight int
	// Busy counts the nodes it started no request to, as one from an
	// earlier cycle was still in flight.
	Busy     int
	Duration time.Duration
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
	// gate bounds the bodies decoded at once; the client takes its slots
	// (package gate).
	gate *gate.Gate
	// maxFailures is how many failed requests in a row make a node stale.
	maxFailures uint32
	// workers counts the worker goroutines (workers.go); work hands a
	// request to an idle one.
	workers sync.WaitGroup
	work    chan task

	// lastCycle is the end of the last completed cycle, in Unix nanoseconds.
	lastCycle atomic.Int64
	// cyclesEnded counts the cycles that ended; lastNodes is how many
	// nodes the last of them scraped or tried to.
	cyclesEnded, lastNodes atomic.Int64

	mu sync.Mutex
	// nodeStates holds what the scraper knows of each node (its request
	// in flight, its failures), for the nodes listed by the last cycle.
	// Guarded by mu.
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
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 2*cfg.Resolution + cfg.Timeout
	}
	maxFailures := 1
	if cfg.Resolution > 0 {
		maxFailures = max(int(cfg.StaleAfter/cfg.Resolution), 1)
	}
	if cfg.Selector == nil {
		cfg.Selector = labels.Everything()
	}
	if cfg.Classify == nil {
		cfg.Classify = func(error) string { return "other" }
	}
	r, _ := client.(Recycler)
	return &Scraper{cfg: cfg, nodes: nodes, client: client, recycler: r, sink: sink, metrics: m, clock: clk,
		gate: gate.New(cfg.Parallelism), maxFailures: uint32(maxFailures), work: make(chan task),
		nodeStates: map[string]*nodeState{}, forgotten: map[string]struct{}{}}
}

// Run scrapes at once, follows up on each node FollowUp after its first
// scrape, then scrapes every resolution from the end of those two cycles,
// until ctx is done. It returns once every request it started has ended
// and every worker has exited.
func (s *Scraper) Run(ctx context.Context) {
	defer s.workers.Wait()
	ctx = s.withGate(ctx)
	var mu sync.Mutex
	firstDone := map[string]time.Time{}
	// The start-up cycle starts every node at once; each request has
	// its timeout, which is less than the resolution, so every node is
	// tried once before the follow-up.
	res := s.scrapePlanned(ctx, plan{
		deadline: s.cfg.Resolution,
		done: func(node string, at time.Time) {
			mu.Lock()
			firstDone[node] = at
			mu.Unlock()
		},
	})
	s.logStartCycle("first", res)
	if ctx.Err() != nil {
		return
	}
	if s.cfg.FollowUp > 0 {
		// Each node's second scrape comes FollowUp after its own first
		// one, so its two samples are at least that far apart; nodes
		// the first cycle missed go at once.
		followStart := s.clock.Now()
		res = s.scrapePlanned(ctx, plan{
			deadline: s.cfg.Resolution,
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
	// every node again seconds after its follow-up.
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
		"failed", res.Failed, "inFlight", res.InFlight, "busy", res.Busy, "duration", res.Duration)
}

func (s *Scraper) logCycle(res Result) {
	klog.V(1).InfoS("Scrape cycle finished", "nodes", res.Nodes, "succeeded", res.Succeeded,
		"failed", res.Failed, "inFlight", res.InFlight, "busy", res.Busy, "duration", res.Duration)
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
// its requests have ended or the cycle's time (one resolution) is up;
// requests still in flight then go on within their timeout and land
// when they end. Cycles must not overlap: Scrape must not be called while
// Run runs or another Scrape has not returned.
func (s *Scraper) Scrape(ctx context.Context) Result {
	spread := s.cfg.Spread
	return s.scrapePlanned(ctx, plan{
		deadline: s.cfg.Resolution,
		offset:   func(node string) time.Duration { return offset(node, spread) },
	})
}

// withGate is ctx carrying the scraper's decode gate, for the client.
func (s *Scraper) withGate(ctx context.Context) context.Context {
	if gate.From(ctx) == s.gate {
		return ctx
	}
	return gate.With(ctx, s.gate)
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

// phaseStep is the granularity of node start times within a spread:
// nodes that hash into one step start together, so the process wakes a few
// times a second for a burst of requests rather than once per node (at
// 5,000 nodes, 333 separate wake-ups a second, each paying for parking and
// unparking threads).
const phaseStep = 250 * time.Millisecond

// offset places a node in [0, spread) by a hash of its name, at the start
// of one of the spread's steps.
func offset(node string, spread time.Duration) time.Duration {
	if spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	steps := uint64(max(spread/phaseStep, 1))
	return time.Duration(h.Sum64()%steps) * (spread / time.Duration(steps))
}
