// Package e2erollout checks that every variant of our Deployment (the
// kustomize base, its high-availability and host-network components alone
// and together, the Helm chart's value sets) completes a rolling update on
// a real kube-scheduler and kube-controller-manager, on a cluster with
// exactly as many schedulable nodes as the variant has replicas: the
// cluster where a surge pod finds no node (a host port taken, a required
// anti-affinity) and a rollout that needs one waits forever.
//
// The Deployment is applied as rendered, with the ServiceAccount its pods
// name and any PodDisruptionBudget, and nothing else: no server runs. The
// pods are played by the simulated kubelets of test/fleet, which report
// every pod bound to their nodes Running and Ready at once (they run no
// probe, so the rendered probes stay and change nothing) and remove a
// deleted pod at once. What is tested is therefore the placement and the
// rollout's arithmetic, which is where the stall was.
//
// It has its own control plane, fleet (127.44.x.y) and temporary folder,
// apart from test/e2e (127.1), test/e2efaults (127.40), test/e2einstall
// (127.41) and test/e2edoctor (127.42), so the packages can run at the same
// time. Its tests run one after another in kube-system, each removing what
// it applied (and waiting for its pods to be gone) when it ends.
package e2erollout
