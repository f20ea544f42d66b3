package scraper

// Every request runs on a goroutine of its own, so that waiting for an
// answer delays no other node. The goroutines are kept between cycles: a
// request goes to a worker that waits idle for one, and only when none
// waits does a new worker start. So a steady fleet costs no goroutine
// start (and no closure allocation) per request, and the workers' stacks,
// grown once, are not grown again every cycle. A worker idle for a whole
// resolution exits: the number of workers follows the number of requests
// in flight at once over the last resolution, at most the number of nodes.

// task is one node's request of one cycle.
type task struct {
	c *cycle
	j job
}

// start runs t on an idle worker, or on a new one when none waits.
func (s *Scraper) start(t task) {
	select {
	case s.work <- t:
	default:
		s.workers.Add(1)
		go s.worker(t)
	}
}

// worker runs t, then the tasks handed to it, until it has been idle for
// a resolution or the scraper stops.
func (s *Scraper) worker(t task) {
	defer s.workers.Done()
	idle := s.clock.NewTimer(s.cfg.Resolution)
	defer idle.Stop()
	for {
		t.c.run(t.j)
		stop := t.c.ctx.Done()
		t = task{} // an idle worker keeps no cycle alive
		idle.Reset(s.cfg.Resolution)
		select {
		case t = <-s.work:
		case <-idle.C():
			return
		case <-stop:
			return
		}
	}
}
