// Package scraper runs the scrape cycle: every resolution it fetches the
// metrics of every selected node, each at a stable per-node phase with a
// per-node timeout, and hands each node's batch to a sink.
//
// Every node gets a request of its own in every cycle, started at its
// phase (a hash of its name within Config.Spread), on a goroutine of its
// own, over a connection the client keeps alive. Waiting for an answer
// costs that goroutine and that connection, nothing more: a node that
// answers in 6s of a 10s timeout, or never, delays no other node. What is
// bounded is the work and memory an answer takes: Config.Parallelism decode
// slots (package gate, carried to the Client in the request's context),
// which the client takes once the answer's headers have arrived and holds
// while it reads and decodes the body; a wait for a slot is bounded by the
// request's deadline, and one that ends there fails with the client's
// "no decode slot" reason. So at most Parallelism bodies are in memory
// at once, however many requests wait.
//
// A request lasts at most the timeout, which the server keeps below the
// resolution, so it ends before its node's next phase. A request still in
// flight when its cycle ends is not cancelled: it lands when it ends, and
// a cycle that lists its node meanwhile starts no second one (Result.Busy,
// NodeStatus.Skipped). Only the scraper's stop cuts requests short; such
// a request says nothing of the node and counts as no failure.
//
// Staleness counts failed requests, not time: a node whose last
// StaleAfter/Resolution requests failed (two at the defaults) is dropped
// from the sink, once; a cycle that started no request to it counts for
// nothing. A node no longer listed is dropped at once.
//
// Requests run on kept worker goroutines (workers.go): an idle worker
// takes the next request, a new one starts only when none is idle, and one
// idle for a resolution exits. A warm cycle allocates about four times a
// node, as when requests waited for slots (TestCycleAllocationsPerNode,
// BenchmarkCycle); a request waiting for its answer holds about 8 KiB
// (docs/sizing.md).
//
// It knows nothing about how a kubelet is reached or decoded (that is the
// Client's job) nor how points become rates (the Sink's).
package scraper
