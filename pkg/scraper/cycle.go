package scraper

import (
	"context"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// plan says how one cycle runs.
type plan struct {
	// deadline is how long after its start the cycle waits for its
	// requests. Requests still in flight then are not cancelled: each
	// has its own timeout, lands when it ends, and its node is not
	// started again before.
	deadline time.Duration
	// offset is when a node's request starts, after the cycle's start;
	// nil starts every node at once.
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

// cycle is one run over the nodes.
type cycle struct {
	s *Scraper
	// ctx is the requests' parent: the scraper's, with the decode gate;
	// not bounded by the cycle's deadline.
	ctx  context.Context
	done func(node string, at time.Time)

	succeeded, failed atomic.Int64
	// pending counts the cycle's requests not yet landed; the last to
	// land closes ended.
	pending atomic.Int64
	ended   chan struct{}
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
	jobs, busy := s.admit(nodes, p)

	c := &cycle{s: s, ctx: s.withGate(ctx), done: p.done, ended: make(chan struct{})}
	c.pending.Store(int64(len(jobs)))
	if len(jobs) == 0 {
		close(c.ended)
	}
	waitCtx, cancel := s.withDeadline(ctx, start.Add(p.deadline))
	defer cancel()
	c.dispatch(start, jobs)
	select {
	case <-c.ended:
	case <-waitCtx.Done():
	}

	s.sink.Prune()
	end := s.clock.Now()
	s.lastCycle.Store(end.UnixNano())
	s.lastNodes.Store(int64(len(jobs) + busy))
	s.cyclesEnded.Add(1)
	if s.metrics != nil {
		s.metrics.tickDuration.Observe(end.Sub(start).Seconds())
	}
	succeeded, failed := int(c.succeeded.Load()), int(c.failed.Load())
	return Result{
		Nodes:     len(jobs) + busy,
		Succeeded: succeeded,
		Failed:    failed,
		InFlight:  int(c.pending.Load()),
		Busy:      busy,
		Duration:  end.Sub(start),
	}
}

// dispatch starts each job's request at its offset after start, each on a
// goroutine of its own (see workers.go), and returns once all are started (or ctx ended:
// the jobs left are released unstarted). jobs are in order of offset;
// nodes of one offset start together, so the process wakes once per
// phase step (see phaseStep), not once per node.
func (c *cycle) dispatch(start time.Time, jobs []job) {
	s := c.s
	for i := 0; i < len(jobs); {
		if wait := start.Add(jobs[i].offset).Sub(s.clock.Now()); wait > 0 {
			t := s.clock.NewTimer(wait)
			select {
			case <-c.ctx.Done():
				t.Stop()
			case <-t.C():
			}
		}
		if c.ctx.Err() != nil {
			for _, j := range jobs[i:] {
				s.release(j)
				c.landed()
			}
			return
		}
		at := jobs[i].offset
		for ; i < len(jobs) && jobs[i].offset == at; i++ {
			s.start(task{c: c, j: jobs[i]})
		}
	}
}

// landed counts one of the cycle's requests as ended.
func (c *cycle) landed() {
	if c.pending.Add(-1) == 0 {
		close(c.ended)
	}
}

// run scrapes one node now, with the full timeout, and lands the result;
// a node deleted since the cycle began is left alone.
func (c *cycle) run(j job) {
	s := c.s
	defer c.landed()
	if s.deleted(j) {
		s.release(j)
		return
	}
	began := s.clock.Now()
	reqCtx, cancel := s.withDeadline(c.ctx, began.Add(s.cfg.Timeout))
	batch, err := s.client.GetMetrics(reqCtx, j.node)
	held := s.clock.Since(began)
	cancel()
	a := attempt{began: began, held: held, batch: batch, err: err}
	// The scraper's stop cut it short: that says nothing of the node.
	a.cut = err != nil && c.ctx.Err() != nil && held < s.cfg.Timeout
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
