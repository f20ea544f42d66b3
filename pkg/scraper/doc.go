// Package scraper runs the scrape cycle: every resolution it fetches the
// metrics of every selected node concurrently, with bounded parallelism, a
// per-node deadline and a stable per-node phase, and hands each node's batch
// to a sink.
//
// Nodes are scraped in two lanes so that nodes which do not answer never
// cost the others their scrape. A node is slow when its last request that
// ran its course held its slot for half the timeout or more (a node that
// never answers holds it until its timeout or until it is given up); the
// others, and nodes not tried yet, are fast. Fast nodes have Config.Parallelism slots: each starts
// at its phase, and a fast node that was not scraped in a cycle (no slot
// came free in time) starts first in the next; a fast request unanswered
// after half the timeout while other fast nodes wait for a slot is given
// up (ReasonSlow; not in the start-up cycle) and the node becomes slow. Slow nodes have
// Config.SlowParallelism slots of their own, plus any fast slot left idle
// once every fast node of the cycle has started; they are taken least
// recently tried first, and only while a full timeout is left in the cycle.
// So a node that stops answering holds a fast slot for one cycle at most,
// and after that delays no fast node; no slow node waits for its next try
// longer than the slow nodes ahead of it take.
//
// At most Parallelism + SlowParallelism requests are in flight, which is
// also the bound on response bodies decoded at once.
//
// It knows nothing about how a kubelet is reached or decoded (that is the
// Client's job) nor how points become rates (the Sink's).
package scraper
