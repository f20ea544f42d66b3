// Package chart tests the Helm chart in charts/metrics-server with the helm
// CLI that test/tools/build-k8s.sh builds into test/.cache/bin: the chart
// lints, and what it renders has the shape of the kustomize base
// (manifests/base) and does what each value says. It does not install the
// chart into a cluster.
package chart
