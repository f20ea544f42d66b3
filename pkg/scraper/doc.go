// Package scraper runs the scrape cycle: every resolution it fetches the
// metrics of every selected node concurrently, with bounded parallelism, a
// per-node deadline and a stable per-node phase, and hands each node's batch
// to a sink.
//
// It knows nothing about how a kubelet is reached or decoded (that is the
// Client's job) nor how points become rates (the Sink's). A slow or dead node
// costs one worker for at most the per-node timeout and never delays the
// batches of the other nodes.
package scraper
