// Package e2esecurity checks, on a real kube-apiserver, what the server's
// identity can and cannot do: acting as the ServiceAccount
// kube-system/metrics-server with a token from the TokenRequest API, it
// tries each boundary as an attacker holding that token would (create a
// bootstrap-token Secret, read another Secret, write events elsewhere,
// patch another APIService) and lists the ServiceAccount's effective
// permissions (SelfSubjectRulesReview) against the table SECURITY.md
// publishes, failing on any grant the table does not list. It also plays
// the switch of a kustomize install to cert-manager with the one command
// docs/tls.md gives, and checks nothing of the bootstrap's access is left.
//
// It installs the RBAC, ServiceAccount and Secret of manifests/base
// (localcluster.Installation); no metrics server runs and no fleet is
// started, so the package is quick. It has its own control plane and
// temporary folder (its addressBase, 43, is reserved for a fleet it does
// not start), apart from test/e2e (127.1), test/e2efaults (127.40),
// test/e2einstall (127.41) and test/e2edoctor (127.42).
package e2esecurity
