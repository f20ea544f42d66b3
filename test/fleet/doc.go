// Package fleet simulates the kubelets of many nodes in one process, for a
// control plane with no container runtime: it registers Node objects (with
// loopback addresses, the kubelet port, capacity) and keeps them Ready with
// Leases, plays the kubelet for pods bound to its nodes (Running, Ready, a
// pod IP; deletion honoured), and serves each node's /stats/summary and
// /metrics/resource over HTTPS on the node's own 127.x.y.z address, in the
// kubelet's exact formats, with cumulative CPU counters.
//
// Usage follows a load model a test controls: the annotation
// fleet.kubemetrics.io/usage on a pod ("cpu=250m,memory=64Mi", per
// container). Faults per node (slow, 500, 404 on one endpoint, garbage,
// wrong TLS name) are set with SetMode.
package fleet
