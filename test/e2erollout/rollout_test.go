package e2erollout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// rolloutLimit bounds each rollout (the first one and the one the test
// starts). Here one takes seconds: the fleet reports a pod Ready as soon as
// it is bound and removes a deleted one at once. A rollout that needs a
// node the cluster does not have never completes, so the limit only costs
// time when a variant is broken.
const rolloutLimit = 60 * time.Second

// applied are the kinds of a render the test applies: the Deployment, the
// ServiceAccount its pods name (without it the ReplicaSet controller
// cannot create them) and a PodDisruptionBudget, which a rollout does not
// consult (the deployment controller deletes old pods itself, it does not
// evict them) and is applied to show just that.
var applied = map[string]bool{"Deployment": true, "ServiceAccount": true, "PodDisruptionBudget": true}

// requiredAntiAffinity is what charts/metrics-server/values.yaml shows for
// two replicas on different nodes.
const requiredAntiAffinity = `
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels:
            app.kubernetes.io/name: metrics-server
        topologyKey: kubernetes.io/hostname
`

// TestRolloutCompletes: every variant of the Deployment, on a cluster with
// as many schedulable nodes as it has replicas, first rolls out, then
// completes a rollout of a changed pod template within rolloutLimit: every
// replica updated and available, none of the old ReplicaSet left. It fails
// with the stuck pods and their scheduling events otherwise.
func TestRolloutCompletes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		render   func(t *testing.T) []byte
		replicas int32
	}{
		{"kustomize base", kustomizeOf("manifests/base"), 1},
		{"kustomize high-availability", kustomizeOf("manifests/base", "manifests/components/high-availability"), 2},
		{"kustomize host-network overlay", kustomizeDir("manifests/overlays/host-network"), 1},
		{"kustomize high-availability and host-network", kustomizeOf("manifests/base", "manifests/components/high-availability", "manifests/components/host-network"), 2},
		{"kustomize host-network and high-availability", kustomizeOf("manifests/base", "manifests/components/host-network", "manifests/components/high-availability"), 2},
		{"chart defaults", chartWith(), 1},
		{"chart hostNetwork", chartWith("--set", "hostNetwork.enabled=true"), 1},
		{"chart two replicas", chartWith("--set", "replicas=2", "--set", "podDisruptionBudget.enabled=true"), 2},
		{"chart two replicas and hostNetwork", chartWith("--set", "replicas=2", "--set", "podDisruptionBudget.enabled=true", "--set", "hostNetwork.enabled=true"), 2},
		{"chart two replicas and required anti-affinity", chartWithValues("replicas: 2\npodDisruptionBudget:\n  enabled: true\n" + requiredAntiAffinity), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rollOut(t, tc.render(t), tc.replicas)
		})
	}
}

// rollOut applies the Deployment of rendered (with applied's other kinds)
// on replicas schedulable nodes, waits for its first rollout, changes its
// pod template and waits for that rollout.
func rollOut(t *testing.T, rendered []byte, replicas int32) {
	ctx := context.Background()
	d := applyRendered(t, rendered)
	if got := replicasOf(d); got != replicas {
		t.Fatalf("the render has %d replicas, want %d", got, replicas)
	}
	logf("%s: %d replicas, strategy %s", t.Name(), replicas, strategyOf(d))
	began := time.Now()
	waitRolledOut(t, d, began)
	checkPlacement(t, d)
	logf("%s: first rollout complete in %v", t.Name(), time.Since(began).Round(100*time.Millisecond))

	began = time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"e2erollout.kubemetrics.io/restarted-at":%q}}}}}`, began.Format(time.RFC3339Nano))
	if _, err := e.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("changing the pod template of %s/%s: %v", d.Namespace, d.Name, err)
	}
	waitRolledOut(t, d, began)
	checkPlacement(t, d)
	logf("%s: rollout of the changed template complete in %v", t.Name(), time.Since(began).Round(100*time.Millisecond))
}

// applyRendered cordons the fleet down to the render's replicas, applies
// applied's kinds of rendered as the admin and removes them (waiting for
// their pods to go) when the test ends. It returns the Deployment.
func applyRendered(t *testing.T, rendered []byte) *appsv1.Deployment {
	t.Helper()
	ctx := context.Background()
	objs, err := localcluster.Decode(rendered)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var deployments []*appsv1.Deployment
	for _, o := range objs {
		if !applied[o.GetKind()] {
			continue
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		if o.GetKind() == "Deployment" {
			var d appsv1.Deployment
			if err := yaml.Unmarshal(b, &d); err != nil {
				t.Fatalf("Deployment %s/%s: %v", o.GetNamespace(), o.GetName(), err)
			}
			deployments = append(deployments, &d)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	if len(deployments) != 1 {
		t.Fatalf("the render has %d Deployments, want 1", len(deployments))
	}
	d := deployments[0]
	cordonTo(t, int(replicasOf(d)))
	t.Cleanup(func() { remove(t, buf.Bytes(), d) })
	if _, err := e.cluster.KubectlAs(ctx, e.cluster.AdminKubeconfig, buf.Bytes(), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the render: %v", err)
	}
	return d
}

// remove deletes what applyRendered applied and waits until no pod of the
// Deployment is left, so the next test finds free nodes.
func remove(t *testing.T, objs []byte, d *appsv1.Deployment) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.cluster.KubectlAs(ctx, e.cluster.AdminKubeconfig, objs, "delete", "-f", "-", "--ignore-not-found", "--cascade=foreground", "--wait=true", "--timeout=60s"); err != nil {
		t.Errorf("removing the render: %v", err)
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	waitFor(t, time.Minute, func() error {
		pods, err := e.client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%d pods of %s/%s left", n, d.Namespace, d.Name)
		}
		return nil
	})
}

// cordonTo leaves the first n nodes of the fleet schedulable and cordons
// the others, and waits until the node lifecycle controller has turned
// spec.unschedulable into the taint the scheduler filters by (both ways),
// so the scheduler's view matches before any pod is created.
func cordonTo(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	names := e.fleet.NodeNames()
	if n > len(names) {
		t.Fatalf("%d replicas, but the fleet has %d nodes", n, len(names))
	}
	for i, name := range names {
		want := i >= n
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, want)
		if _, err := e.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("cordoning node %s (%t): %v", name, want, err)
		}
	}
	waitFor(t, 30*time.Second, func() error {
		for i, name := range names {
			want := i >= n
			node, err := e.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			tainted := false
			for _, taint := range node.Spec.Taints {
				tainted = tainted || taint.Key == corev1.TaintNodeUnschedulable
			}
			if node.Spec.Unschedulable != want || tainted != want {
				return fmt.Errorf("node %s: unschedulable %t, tainted %t; want %t", name, node.Spec.Unschedulable, tainted, want)
			}
		}
		return nil
	})
}

// waitRolledOut waits up to rolloutLimit until the Deployment's current
// generation is fully rolled out: observed, every replica updated and
// available, no other pod left. Otherwise it fails with the Deployment's
// status and the pods' state and events since began.
func waitRolledOut(t *testing.T, d *appsv1.Deployment, began time.Time) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(rolloutLimit)
	for {
		cur, err := e.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err == nil {
			err = rolledOut(cur)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not complete in %v: %v\n%s", rolloutLimit, err, describe(d, began))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rolledOut says why d's rollout is not complete, or nil.
func rolledOut(d *appsv1.Deployment) error {
	want := replicasOf(d)
	s := d.Status
	if s.ObservedGeneration < d.Generation {
		return fmt.Errorf("generation %d not observed yet (observed %d)", d.Generation, s.ObservedGeneration)
	}
	if s.UpdatedReplicas != want || s.Replicas != want || s.AvailableReplicas != want {
		return fmt.Errorf("replicas %d, updated %d, available %d; want %d each", s.Replicas, s.UpdatedReplicas, s.AvailableReplicas, want)
	}
	return nil
}

// checkPlacement: every pod of d is on a node left schedulable (one placed
// before the cordon reached the scheduler would give the rollout a node
// the variant must do without).
func checkPlacement(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ctx := context.Background()
	pods, err := e.client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		node, err := e.client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s on node %q: %v", p.Name, p.Spec.NodeName, err)
		}
		if node.Spec.Unschedulable {
			t.Fatalf("pod %s runs on cordoned node %s", p.Name, node.Name)
		}
	}
}

// describe is the state of d's rollout for a failure: its status and
// conditions, each of its pods, and every event about it, its ReplicaSets
// or their pods since began (the scheduler's FailedScheduling among them).
func describe(d *appsv1.Deployment, began time.Time) string {
	ctx := context.Background()
	var b strings.Builder
	cur, err := e.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		fmt.Fprintf(&b, "deployment: %v\n", err)
		return b.String()
	}
	s := cur.Status
	fmt.Fprintf(&b, "deployment %s/%s: strategy %s; generation %d observed %d; replicas %d updated %d ready %d available %d unavailable %d\n",
		cur.Namespace, cur.Name, strategyOf(cur), cur.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.UnavailableReplicas)
	for _, c := range s.Conditions {
		fmt.Fprintf(&b, "  condition %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := e.client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		fmt.Fprintf(&b, "pods: %v\n", err)
	} else {
		for _, p := range pods.Items {
			node := p.Spec.NodeName
			if node == "" {
				node = "(not scheduled)"
			}
			fmt.Fprintf(&b, "pod %s: template %s, node %s, phase %s\n", p.Name, p.Labels[appsv1.DefaultDeploymentUniqueLabelKey], node, p.Status.Phase)
		}
	}
	// This Deployment's ReplicaSets, by owner: an earlier test's
	// Deployment had the same name, and its objects' names the same prefix.
	var sets []string
	rss, err := e.client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		fmt.Fprintf(&b, "replica sets: %v\n", err)
	}
	if rss != nil {
		for _, rs := range rss.Items {
			if owner := metav1.GetControllerOf(&rs); owner != nil && owner.UID == cur.UID {
				sets = append(sets, rs.Name)
			}
		}
	}
	ours := func(ref corev1.ObjectReference) bool {
		if ref.UID == cur.UID {
			return true
		}
		for _, rs := range sets {
			if ref.Name == rs || (ref.Kind == "Pod" && strings.HasPrefix(ref.Name, rs+"-")) {
				return true
			}
		}
		return false
	}
	events, err := e.client.CoreV1().Events(d.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "events: %v\n", err)
		return b.String()
	}
	var lines []string
	for _, ev := range events.Items {
		at := ev.LastTimestamp.Time
		if at.IsZero() {
			at = ev.EventTime.Time
		}
		if !ours(ev.InvolvedObject) || at.Before(began.Add(-time.Second)) {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s event %s %s/%s %s: %s", at.Format("15:04:05"), ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, strings.TrimSpace(ev.Message)))
	}
	sort.Strings(lines)
	const maxLines = 40
	if len(lines) > maxLines {
		lines = append(lines[:maxLines], fmt.Sprintf("... %d more events", len(lines)-maxLines))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// replicasOf is d's spec.replicas, 1 when unset (the API's default).
func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// strategyOf prints d's strategy as rendered or stored ("" fields left to
// the API's defaults: RollingUpdate, 25% and 25%).
func strategyOf(d *appsv1.Deployment) string {
	s := d.Spec.Strategy
	typ := string(s.Type)
	if typ == "" {
		typ = "(RollingUpdate)"
	}
	if s.RollingUpdate == nil {
		return typ
	}
	str := func(v fmt.Stringer, isNil bool) string {
		if isNil {
			return "(25%)"
		}
		return v.String()
	}
	return fmt.Sprintf("%s maxSurge %s maxUnavailable %s", typ,
		str(s.RollingUpdate.MaxSurge, s.RollingUpdate.MaxSurge == nil),
		str(s.RollingUpdate.MaxUnavailable, s.RollingUpdate.MaxUnavailable == nil))
}

// kustomizeDir renders a kustomization folder of the repository.
func kustomizeDir(dir string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		out, err := e.cluster.RenderKustomize(context.Background(), filepath.Join(e.repo, dir))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// kustomizeOf renders the folder resource of the repository with the
// repository's components, in that order, through a kustomization written
// in a temporary folder (kustomize takes relative paths only).
func kustomizeOf(resource string, components ...string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		out, err := e.cluster.RenderKustomizeOf(context.Background(), e.repo, resource, components...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// chartWith renders charts/metrics-server as release metrics-server in
// kube-system with the pinned helm and the flags given.
func chartWith(flags ...string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		if _, err := os.Stat(e.helm); err != nil {
			t.Fatalf("helm is missing (%v): build it with make k8s", err)
		}
		args := append([]string{"metrics-server", filepath.Join(e.repo, "charts/metrics-server"), "--namespace", "kube-system"}, flags...)
		out, err := localcluster.RenderHelm(context.Background(), e.helm, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// chartWithValues renders the chart with values, a values file's content.
func chartWithValues(values string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		// Not in t.TempDir(), named after the test: helm splits --values
		// at commas.
		dir, err := os.MkdirTemp("", "e2erollout-values-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		f := filepath.Join(dir, "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		return chartWith("--values", f)(t)
	}
}

// waitFor polls check every quarter second until it passes or limit
// passes, then fails the test with check's last error.
func waitFor(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", limit, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
