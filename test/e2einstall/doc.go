// Package e2einstall installs the metrics server the ways operators do
// (the kustomize base and overlays, the Helm chart) into a real local
// control plane, and checks that kubectl top and the HPA are served
// through what was installed, with the kube-apiserver verifying our
// serving certificate.
//
// There is no container runtime and no kube-proxy, so an installation is
// applied as rendered but for two things (localcluster.Installation): the
// Deployment runs as processes, each with the rendered container's
// arguments (paths under its volumes moved to folders of its own, its
// port and address on loopback) and a token of the rendered
// ServiceAccount; and the Service is an ExternalName for localhost, whose
// port the APIServices are patched to. Nothing else of the install is
// changed.
//
// It has its own control plane, fleet (127.41.x.y) and temporary folder,
// apart from test/e2e (127.1), test/e2efaults (127.40) and test/e2edoctor
// (127.42), so the packages can run at the same time. Its tests run one
// after another, each removing what it installed when it ends.
package e2einstall
