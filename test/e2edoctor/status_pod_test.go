package e2edoctor

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/pkg/status"
	"github.com/kubemetrics/metrics-server/test/fleet"
)

// createPod creates pod default/name with one container, bound to node
// (the fleet then plays its kubelet and marks it Running) or, with node
// "", left to a scheduler that does not exist (Pending), and deletes it
// when the test ends.
func createPod(t *testing.T, name, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{
			NodeName:      node,
			SchedulerName: "status-e2e-no-such-scheduler",
			Containers:    []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	if _, err := e.client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		zero := int64(0)
		if err := e.client.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Errorf("deleting pod default/%s: %v", name, err)
		}
	})
}

// TestStatusPodReason: `metrics-server status pod NS/NAME` for a Running
// pod on a node whose kubelet fails (NotReported, with the node's failing
// scrapes) and for a Pending pod (NotRunning), as JSON and as the table,
// and for a pod that does not exist (exit 1). It runs beside
// TestNodeEventsOnScrapeFailure, after the tests that run one after
// another: each breaks its own node and asserts nothing of the others, and
// both wait for scrape cycles.
func TestStatusPodReason(t *testing.T) {
	t.Parallel()
	name, ip := breakNode(t, 2, fleet.ModeError500)
	createPod(t, "status-e2e-on-broken", name)
	createPod(t, "status-e2e-pending", "")

	// The server learns that the pod runs from its informer, and that its
	// node fails at its next scrape.
	var onBroken status.Pod
	deadline := time.Now().Add(2 * resolution)
	for {
		onBroken = status.Pod{}
		statusJSON(t, &onBroken, "pod", "default/status-e2e-on-broken")
		if onBroken.Reason == "NotReported" && onBroken.NodeStatus != nil && onBroken.NodeStatus.Failing() || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if onBroken.Served || onBroken.Reason != "NotReported" || onBroken.Node != name ||
		onBroken.Message != "no kubelet listed the pod in its last successful scrape: its node has not been scraped yet, or its scrapes fail (see the node's status), or the node is not selected (--node-selector), or another node claims the pod" {
		t.Errorf("pod on the broken node: %+v, want NotReported on %s", onBroken, name)
	}
	if n := onBroken.NodeStatus; n == nil || n.Node != name || n.Address != kubeletAddr(ip) || n.Reason != "http_status" {
		t.Errorf("pod on the broken node: its node's status %+v, want %s at %s failing (http_status)", n, name, kubeletAddr(ip))
	}
	r := runStatusAs(t, e.cluster.AdminKubeconfig, "pod", "default/status-e2e-on-broken")
	t.Logf("metrics-server status pod default/status-e2e-on-broken:\n%s", r.stdout)
	for _, want := range []string{
		`Pod:\s+default/status-e2e-on-broken$`, `Served:\s+no$`, `Reason:\s+NotReported$`, `Message:\s+no kubelet listed the pod`,
		`Node:\s+` + regexp.QuoteMeta(name) + `$`,
		`Node scrapes:\s+failing \(http_status\), last success \S+ ago, (1 failure|\d+ failures) in a row$`,
		`Node error:\s+scraping node "` + regexp.QuoteMeta(name) + `" at ` + regexp.QuoteMeta(kubeletAddr(ip)) + `.*http status 500: Internal Error: `,
	} {
		if r.code != 0 || !regexp.MustCompile(`(?m)^`+want).MatchString(r.stdout) {
			t.Errorf("status pod default/status-e2e-on-broken has no line %s: %v", want, r)
		}
	}

	const pending = "the pod is Pending, not Running; only Running pods have metrics"
	var p status.Pod
	statusJSON(t, &p, "pod", "default/status-e2e-pending")
	if want := (status.Pod{Namespace: "default", Name: "status-e2e-pending", Reason: "NotRunning", Message: pending}); p != want {
		t.Errorf("pod status-e2e-pending: %+v, want %+v", p, want)
	}
	r = runStatusAs(t, e.cluster.AdminKubeconfig, "pod", "default/status-e2e-pending")
	for _, want := range []string{`Served:\s+no$`, `Reason:\s+NotRunning$`, `Message:\s+` + regexp.QuoteMeta(pending) + `$`} {
		if r.code != 0 || !regexp.MustCompile(`(?m)^`+want).MatchString(r.stdout) {
			t.Errorf("status pod default/status-e2e-pending has no line %s: %v", want, r)
		}
	}

	// A pod that does not exist is no state of a pod: exit 1 and why.
	for _, output := range []string{"table", "json"} {
		r := runStatusAs(t, e.cluster.AdminKubeconfig, "pod", "default/status-e2e-missing", "-o", output)
		if want := "Error: pod default/status-e2e-missing does not exist (kubectl get pod -n default status-e2e-missing)"; r.code != 1 || !strings.Contains(r.stderr, want) || r.stdout != "" {
			t.Errorf("status pod default/status-e2e-missing -o %s: %v; want exit 1, nothing on stdout and %q on stderr", output, r, want)
		}
	}
}
