// Package status serves why a node or pod has no metrics, as JSON on the
// server's secure port, beside (not inside) the metrics.k8s.io API:
//
//	GET /status/nodes[?failing=true][&limit=N]  every node's last scrapes, failing nodes first
//	GET /status/nodes/<name>                   one node
//	GET /status/pods/<namespace>/<name>        whether a pod is served, and why not
//
// The paths are non-resource URLs: the generic server's delegated
// authentication and authorization guard them like /metrics (a
// SubjectAccessReview for get on /status/...; RBAC's nonResourceURLs
// "/status/*"). The types here are the wire format, read back by the
// metrics-server status command.
//
// It knows nothing about how nodes are scraped or points stored: it reads
// the scraper's node statuses and the store's pod reasons through the
// interfaces it declares.
package status
