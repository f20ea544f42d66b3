package scraper

import (
	"context"
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
}

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

	succeeded, failed, skipped atomic.Int64
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
		fast: queue{jobs: fast}, slow: queue{jobs: slow}}
	var wg sync.WaitGroup
	// Fast workers borrow for slow nodes once the fast queue is empty:
	// every fast node of the cycle then has a worker of its own.
	for range min(s.cfg.Parallelism, len(fast)+len(slow)) {
		wg.Go(func() {
			c.drainFast()
			c.drainSlow()
		})
	}
	for range min(s.cfg.SlowParallelism, len(slow)) {
		wg.Go(c.drainSlow)
	}
	wg.Wait()
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

// drainFast scrapes fast nodes, each at its offset, until none is left.
// A node whose offset passes while every worker is busy starts late;
// one not started before the cycle's end is skipped.
func (c *cycle) drainFast() {
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
		c.run(j, true)
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
		c.run(j, false)
	}
}

// run scrapes one node now, or records it skipped when the cycle is over;
// a node deleted since the cycle began is left alone.
// A fast node's request still unanswered after half the timeout while
// other fast nodes wait for a slot is given up: the node is slow, and the
// slow lane tries it with the full timeout from the next cycle on.
func (c *cycle) run(j job, fast bool) {
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
	var demoted atomic.Bool
	if fast && c.fast.waiting() {
		var demote context.CancelCauseFunc
		reqCtx, demote = withCancelCause(reqCtx)
		// A fake clock runs this with its lock held: no clock calls.
		t := s.clock.AfterFunc(s.cfg.Timeout/2, func() {
			if c.fast.waiting() {
				demoted.Store(true)
				demote(errSlow)
			}
		})
		defer t.Stop()
	}
	batch, err := s.client.GetMetrics(reqCtx, j.node)
	held := s.clock.Since(began)
	cancel()
	a := attempt{began: began, held: held, batch: batch, err: err}
	if err != nil {
		switch {
		case demoted.Load():
			a.demoted = true
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
