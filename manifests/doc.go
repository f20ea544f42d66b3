// Package manifests holds the kustomize manifests that deploy the metrics
// server; its test guards their shape against the code (flags, API
// versions, RBAC for both kubelet endpoints).
package manifests
