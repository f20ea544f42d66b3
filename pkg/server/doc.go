// Package server composes the metrics server: the node and pod informers,
// the kubelet client, the scraper, the store, the metrics.k8s.io API on a
// generic API server, health checks and self-metrics.
//
// It holds no logic of its own beyond wiring and lifecycle; every decision
// about scraping, rates or serving lives in the package that owns it. Flags
// are not its business either: cmd/metrics-server/app/options turns them
// into a Config.
package server
