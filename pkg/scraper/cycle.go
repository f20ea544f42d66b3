package scraper

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// plan says how one cycle runs.
type plan struct {
	// deadline is how long after its start the cycle ends, requests not
	// started by then skipped and those in flight cancelled.
	deadline time.Duration
	// offset is when a fast node's request starts, after the cycle's
	// start; nil starts every node at once. Nodes overdue from the last
	// cycle and slow nodes start as soon as a slot is free.
	offset func(node string) time.Duration
	// done, when set, is told of each node scraped successfully and when.
	done func(node string, at time.Time)
	// giveUp lets the watchdog give up fast requests after half the
	// timeout while other fast nodes wait.
	giveUp bool
	// giveUpOnEvidence gives them up only once the cycle has seen that
	// most nodes answer within half the timeout (as many ended requests
	// as there are slots, at most evidenceMin, more than half of them
	// answered that quickly). The start-up cycle
	// uses it: its first TLS handshakes may all be slow while thousands
	// start at once, and then no node is given up; but nodes that hang
	// among nodes that answer must not hold every slot for the whole
	// timeout, which made a restarted server with three hanging nodes a
	// slot wait 40 s for its first rates.
	giveUpOnEvidence bool
}

// evidenceMin caps how many requests a cycle must have seen end before
// giveUpOnEvidence may judge that most nodes answer quickly. No more than
// the slots are asked for: with few slots, hanging nodes fill them after
// only a few quick answers.
const evidenceMin = 8

// job is one node to scrape in a cycle.
type job struct {
	node   *corev1.Node
	state  *nodeState
	offset time.Duration
}

// queue hands out a cycle's jobs in order to any number of workers.
type queue struct {
	jobs []job
	next atomic.Int64
}

func (q *queue) pop() (job, bool) {
	i := q.next.Add(1) - 1
	if i >= int64(len(q.jobs)) {
		return job{}, false
	}
	return q.jobs[i], true
}

// waiting reports whether jobs are left to hand out.
func (q *queue) waiting() bool {
	return q.next.Load() < int64(len(q.jobs))
}

// rest returns the jobs never handed out; only once the workers are done.
func (q *queue) rest() []job {
	return q.jobs[min(int(q.next.Load()), len(q.jobs)):]
}

// cycle is one run over the nodes.
type cycle struct {
	s        *Scraper
	ctx      context.Context
	start    time.Time
	deadline time.Time
	done     func(node string, at time.Time)
	fast     queue
	slow     queue
	// alwaysGiveUp and giveUpOnEvidence are the plan's.
	alwaysGiveUp, giveUpOnEvidence bool

	succeeded, failed, skipped atomic.Int64
	// ended counts the requests that ran their course, quick those of
	// them answered within half the timeout; kept only with
	// giveUpOnEvidence.
	ended, quick atomic.Int64
}

// mayGiveUp reports whether the watchdog may give up slow fast requests now.
func (c *cycle) mayGiveUp() bool {
	if c.alwaysGiveUp {
		return true
	}
	if !c.giveUpOnEvidence {
		return false
	}
	ended := c.ended.Load()
	return ended >= int64(min(evidenceMin, c.s.cfg.Parallelism)) && 2*c.quick.Load() > ended
}

// scrapePlanned runs one cycle as p says.
func (s *Scraper) scrapePlanned(ctx context.Context, p plan) Result {
	start := s.clock.Now()
	s.beginListing()
	nodes, err := s.nodes.List(s.cfg.Selector)
	if err != nil {
		klog.ErrorS(err, "Listing nodes to scrape failed")
		return Result{}
	}
	fast, slow := s.admit(nodes, p)

	cycleCtx, cancel := s.withDeadline(ctx, start.Add(p.deadline))
	defer cancel()
	c := &cycle{s: s, ctx: cycleCtx, start: start, deadline: start.Add(p.deadline), done: p.done,
		fast: queue{jobs: fast}, slow: queue{jobs: slow}, alwaysGiveUp: p.giveUp, giveUpOnEvidence: p.giveUpOnEvidence}
	var wg sync.WaitGroup
	// Fast workers borrow for slow nodes once the fast queue is empty:
	// every fast node of the cycle then has a worker of its own.
	slots := make([]fastSlot, min(s.cfg.Parallelism, len(fast)+len(slow)))
	for i := range slots {
		wg.Go(func() {
			c.drainFast(&slots[i])
			c.drainSlow()
		})
	}
	for range min(s.cfg.SlowParallelism, len(slow)) {
		wg.Go(c.drainSlow)
	}
	watchDone := make(chan struct{})
	workersDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if (p.giveUp || p.giveUpOnEvidence) && len(fast) > 0 {
			c.watch(slots, workersDone)
		}
	}()
	wg.Wait()
	close(workersDone)
	<-watchDone
	// Slow nodes no slot could start with a full timeout left wait for
	// the next cycle, ahead of those tried in this one.
	for _, j := range c.slow.rest() {
		s.land(j, attempt{skipped: true})
		c.skipped.Add(1)
	}

	s.sink.Prune()
	end := s.clock.Now()
	s.lastCycle.Store(end.UnixNano())
	s.lastNodes.Store(int64(len(fast) + len(slow)))
	s.cyclesEnded.Add(1)
	if s.metrics != nil {
		s.metrics.tickDuration.Observe(end.Sub(start).Seconds())
	}
	return Result{
		Nodes:     len(fast) + len(slow),
		Succeeded: int(c.succeeded.Load()),
		Failed:    int(c.failed.Load()),
		Skipped:   int(c.skipped.Load()),
		Duration:  end.Sub(start),
	}
}

// drainFast scrapes fast nodes, each at its offset, until none is left,
// with its request in sl for the watchdog. A node whose offset passes
// while every worker is busy starts late; one not started before the
// cycle's end is skipped.
func (c *cycle) drainFast(sl *fastSlot) {
	for {
		j, ok := c.fast.pop()
		if !ok {
			return
		}
		if wait := c.start.Add(j.offset).Sub(c.s.clock.Now()); wait > 0 {
			t := c.s.clock.NewTimer(wait)
			select {
			case <-c.ctx.Done():
				t.Stop()
			case <-t.C():
			}
		}
		c.run(j, sl)
	}
}

// drainSlow scrapes slow nodes while a full timeout is left in the cycle.
func (c *cycle) drainSlow() {
	for c.ctx.Err() == nil && !c.s.clock.Now().Add(c.s.cfg.Timeout).After(c.deadline) {
		j, ok := c.slow.pop()
		if !ok {
			return
		}
		c.s.tried(j)
		c.run(j, nil)
	}
}

// run scrapes one node now, or records it skipped when the cycle is over;
// a node deleted since the cycle began is left alone. A fast node's
// request runs in sl, where the watchdog may give it up; a slow node's
// (sl nil) has its full timeout.
func (c *cycle) run(j job, sl *fastSlot) {
	if c.s.deleted(j) {
		return
	}
	if c.ctx.Err() != nil {
		c.s.land(j, attempt{skipped: true})
		c.skipped.Add(1)
		return
	}
	s := c.s
	began := s.clock.Now()
	reqCtx, cancel := s.withDeadline(c.ctx, began.Add(s.cfg.Timeout))
	if sl != nil {
		sl.begin(began, cancel)
	}
	batch, err := s.client.GetMetrics(reqCtx, j.node)
	held := s.clock.Since(began)
	demoted := sl != nil && sl.end()
	cancel()
	if c.giveUpOnEvidence && !demoted {
		c.ended.Add(1)
		if err == nil && held < s.cfg.Timeout/2 {
			c.quick.Add(1)
		}
	}
	a := attempt{began: began, held: held, batch: batch, err: err}
	if err != nil {
		switch {
		case demoted:
			a.demoted = true
			a.err = fmt.Errorf("no answer within half the %v timeout while other nodes waited for the slot, tried with the full timeout from the next cycle on: %w", s.cfg.Timeout, err)
		case c.ctx.Err() != nil && held < s.cfg.Timeout:
			// The cycle's end (or shutdown) cut it short: that says
			// nothing about the node.
			a.cut = true
		}
	}
	switch s.land(j, a) {
	case outcomeOK:
		c.succeeded.Add(1)
		if c.done != nil {
			c.done(j.node.Name, s.clock.Now())
		}
	case outcomeFailed:
		c.failed.Add(1)
	}
	if batch != nil && s.recycler != nil {
		s.recycler.Recycle(batch)
	}
}

// fastSlot is a fast worker's request in flight, seen by the watchdog.
type fastSlot struct {
	mu sync.Mutex
	// began is when the request started; cancel ends it, nil when the
	// slot is idle.
	began  time.Time
	cancel context.CancelFunc
	// demoted: the watchdog gave the request up.
	demoted bool
}

func (sl *fastSlot) begin(began time.Time, cancel context.CancelFunc) {
	sl.mu.Lock()
	sl.began, sl.cancel, sl.demoted = began, cancel, false
	sl.mu.Unlock()
}

// end empties the slot and reports whether the watchdog gave its request
// up.
func (sl *fastSlot) end() (demoted bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.cancel = nil
	return sl.demoted
}

// demoteIfBegunBy gives up the slot's request if it began at cutoff or
// before.
func (sl *fastSlot) demoteIfBegunBy(cutoff time.Time) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.cancel != nil && !sl.began.After(cutoff) {
		sl.demoted = true
		sl.cancel()
		sl.cancel = nil
	}
}

// watchEvery is how often, in parts of the timeout, the watchdog looks at
// the fast slots: a request is given up between half the timeout and a
// twentieth more.
const watchEvery = 20

// watch gives up the fast requests that have held their slot for half the
// timeout while fast nodes wait for one: such a node is slow, and the slow
// lane tries it with the full timeout from the next cycle on. It returns
// once no fast node waits (in the start-up cycle only once the workers
// are done), the workers are done or the cycle ends. One
// watchdog a cycle, rather than a timer a request, keeps a request's cost
// what it was without lanes.
func (c *cycle) watch(slots []fastSlot, workersDone <-chan struct{}) {
	t := c.s.clock.NewTicker(max(c.s.cfg.Timeout/watchEvery, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-workersDone:
			return
		case <-t.C():
		}
		// The start-up cycle also gives up the last slow requests once
		// no node waits: the follow-up cycle, hence every first rate,
		// waits for its end.
		if !c.fast.waiting() && !c.giveUpOnEvidence {
			return
		}
		if !c.mayGiveUp() {
			continue
		}
		cutoff := c.s.clock.Now().Add(-c.s.cfg.Timeout / 2)
		for i := range slots {
			slots[i].demoteIfBegunBy(cutoff)
		}
	}
}
