// Package localcluster runs a real Kubernetes control plane on loopback for
// end-to-end tests and the playground: etcd, kube-apiserver with the
// aggregation layer and RBAC, kube-controller-manager (with quick HPA
// settings) and kube-scheduler, all as processes built from pinned sources,
// plus our metrics server registered through the APIServices of
// manifests/. There is no container runtime: kubelets are simulated
// elsewhere (package fleet).
//
// Every process is started in its own process group, logged to a file in
// the cluster's folder, and stopped by PID; pids are also written to
// <dir>/pids so a separate command can clean up.
package localcluster
