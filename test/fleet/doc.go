// Package fleet simulates the kubelets of many nodes in one process, for a
// control plane with no container runtime: it registers Node objects (with
// loopback addresses, the kubelet port, capacity and allocatable) and
// keeps them Ready with Leases, plays the kubelet for pods bound to its
// nodes (Running, Ready, a pod IP; deletion honoured), and serves each
// node's /stats/summary and /metrics/resource over HTTPS on the node's own
// 127.x.y.z address, with cumulative CPU counters.
//
// The bodies are the kubelet's own: the summary is written by the
// kubelet's stats handler and /metrics/resource by its resource collector
// (k8s.io/kubernetes pkg/kubelet), both over the fleet's samples in the
// kubelet's stats types (stats.go, formats.go). Config.FastResource swaps
// in a writer held byte for byte to the collector, for benchmarks.
//
// Magnitudes are real: every third node is a machine of 24 to 96 cores
// with 40 to 400 GiB in use (shape.go); containers start at sub-second
// instants; samples carry the precision each format has (milliseconds in
// /metrics/resource, whole seconds in the summary). A node named
// Prefix-host, when Config.Host is set, reports this machine's capacity
// and usage read with cAdvisor.
//
// Swap and filesystems are the kubelet's too: every fourth node has swap
// (NodeShape.Swap, status.nodeInfo.swap set), where containers swap what
// their usage says and the others 0, as cAdvisor reads a container that
// swaps nothing; a node without swap reports 0 everywhere, and one with
// NodeShape.NoSwapStats no swap stats at all (no swap object, no swap
// series). The full summary (without only_cpu_and_memory=true) adds the
// node's fs and image filesystem, each container's rootfs and logs, each
// pod's token volume and ephemeral-storage stats.
//
// Usage follows a load model a test controls: the annotation
// fleet.kubemetrics.io/usage on a pod ("cpu=250m,memory=18Gi,swap=64Mi,
// ephemeral-storage=1Gi", per container). Faults per node (faults.go): SetMode (slow, hang, 500, 404
// on one endpoint, garbage, wrong TLS name; authfaults.go: a certificate
// without the IP SAN, tokens refused), SetDelay, SetFlap,
// SetClockSkew; DeleteNode and AddNode take a node away and bring it back
// under its name at a new address. RestartContainer (restart.go) replaces
// a container as the runtime does after it exits: its CPU counter starts
// again from 0 and its start time is the restart, in both endpoints,
// while the pod's and the node's CPU count on.
package fleet
