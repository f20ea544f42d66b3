// Package nodecheck diagnoses, node by node, why metrics-server cannot scrape
// a kubelet: the address the server chooses for the node and whether it
// resolves and connects from here, the kubelet's serving certificate (IP
// SANs, authority, validity dates), whether the kubelet accepts the server's
// credentials for nodes/metrics and nodes/stats, which of /metrics/resource
// and /stats/summary answer (and the error text of the one that does not),
// and how far the kubelet's sample times are from this machine's clock.
//
// It reuses the server's own choices rather than restating them: the
// server's kubelet flags (parsed from its Deployment's args by the server's
// own flag definitions), the kubelet client's address choice, its decoders
// and its words for a TLS failure (package kubelet). It asks the kubelets
// with a token of the server's ServiceAccount, so it sees what the server
// sees, and sends no credential to a kubelet whose certificate it did not
// verify, even when the server verifies none (--kubelet-insecure-tls).
//
// Run is bounded in count (a sample of at most MaxNodes nodes), in
// parallelism and in time (per node and in all), and folds the findings of
// many nodes into one finding per check and cause. It knows nothing about
// how findings are printed, nor about the cluster-level checks of package
// doctor.
package nodecheck
