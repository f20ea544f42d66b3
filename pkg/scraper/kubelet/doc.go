// Package kubelet is the client for one kubelet: it chooses the node's
// address and port, sets up TLS and credentials, fetches
// /stats/summary?only_cpu_and_memory=true or /metrics/resource (and, for
// ephemeral storage when configured, the full /stats/summary), and decodes
// either into a points.Batch.
//
// It knows nothing about the scrape cycle, storage or rates. Every error it
// returns is a *ScrapeError naming the node, address and endpoint, with a
// Reason from a small fixed set so callers can count failures without
// unbounded label values.
package kubelet
