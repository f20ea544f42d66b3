package e2einstall

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The HA run's timing: load runs haBaseline before the kill (and must see
// no failure then) and haAfter after it, which covers the 5 s shutdown
// delay, the drain and several HPA syncs (5 s each here).
const (
	haBaseline = 10 * time.Second
	haAfter    = 40 * time.Second
	// hpaSyncPeriod is the HPA controller's (localcluster's default).
	hpaSyncPeriod = 5 * time.Second
)

// TestHAReplicaKilled installs manifests/base with the high-availability
// component, runs its two replicas as two processes on one loopback port
// (--permit-port-sharing, SO_REUSEPORT: the kernel spreads connections over
// both, as a Service spreads them over two pods; both must serve the
// certificate of the one bootstrap Secret, which the APIServices' caBundle
// verifies), and kills the replica that holds the kube-apiserver's
// connections while typed clients and kubectl top read the API in loops
// and an HPA syncs every 5 s.
//
// SIGTERM (what the kubelet sends) must cost nothing: the replica keeps
// serving through its shutdown delay, then stops accepting and drains. For
// SIGKILL only the requests the killed process had already accepted may
// fail (one per reading goroutine, one kubectl top, one HPA sync, after
// which the HPA shows ScalingActive False until its next sync): the
// kube-apiserver does not resend a proxied request, and no replica can
// answer a request its process took to the grave. After either, the HPA
// must still scale on new load, served by the survivor.
func TestHAReplicaKilled(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(strings.ToUpper(sigName(sig)), func(t *testing.T) { haKill(t, sig) })
	}
}

// sigName names a signal in lower case, for install and namespace names.
func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "sigkill"
	}
	return "sigterm"
}

func haKill(t *testing.T, sig syscall.Signal) {
	ctx := context.Background()
	in := install(t, "ha-"+sigName(sig), renderHA(t))
	d := in.Deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Fatalf("the HA Deployment has replicas %v, want 2", d.Spec.Replicas)
	}
	shared := localcluster.StartOptions{Args: []string{"--permit-port-sharing"}}
	a := startServer(t, in, shared)
	shared.Port = a.Port
	b := startServer(t, in, shared)
	waitAvailable(t, in)
	waitTop(t)

	// Both processes accept on the port: hold connections until each has
	// some (the kernel picks a listener by the connection's hash).
	pids := map[*localcluster.Replica]int{a: replicaPID(t, a), b: replicaPID(t, b)}
	spread, certs := holdConnections(t, a.Port, pids)
	logf("%s: held connections per replica: %s %d, %s %d", t.Name(), a.Name, spread[a], b.Name, spread[b])
	// The kube-apiserver verifies whichever replica it reaches against one
	// caBundle: both must serve the certificate of the shared Secret.
	if certs != 1 {
		t.Errorf("the replicas serve %d different certificates, want 1 (one --tls-bootstrap-secret)", certs)
	}
	for _, name := range in.APIServices {
		if s := getAPIService(t, name).Spec; s.InsecureSkipTLSVerify || len(s.CABundle) == 0 {
			t.Errorf("APIService %s: insecureSkipTLSVerify %v, caBundle %d bytes; want the kube-apiserver to verify", name, s.InsecureSkipTLSVerify, len(s.CABundle))
		}
	}

	ns := "ha-" + sigName(sig)
	hpaWorkload(t, ns)
	events := failedMetricEvents(t, ns)

	load := startLoad(ctx, t, ns, in.APIServices)
	time.Sleep(haBaseline)
	before := load.snapshot()
	if before.failed() != 0 {
		t.Fatalf("failures before any kill: %s: %s", before, before.examples())
	}
	// Kill the replica the kube-apiserver talks to: killing an idle one
	// proves nothing.
	conns := map[*localcluster.Replica]int{}
	for r, pid := range pids {
		conns[r] = establishedOn(t, pid, a.Port)
	}
	victim, survivor := a, b
	if conns[b] > conns[a] {
		victim, survivor = b, a
	}
	logf("%s: kube-apiserver connections: %s %d, %s %d; sending %v to %s", t.Name(), a.Name, conns[a], b.Name, conns[b], sig, victim.Name)
	killed := time.Now()
	if err := victim.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.Done():
		logf("%s: %s ended %v after %v", t.Name(), victim.Name, time.Since(killed).Round(time.Millisecond), sig)
	case <-time.After(35 * time.Second):
		t.Errorf("%s still runs 35 s after %v", victim.Name, sig)
	}
	time.Sleep(time.Until(killed.Add(haAfter)))
	after := load.stop(before)
	newEvents := failedMetricEvents(t, ns) - events
	logf("%s: %v: %s; new FailedGetResourceMetric events %d; errors: %s", t.Name(), sig, after, newEvents, after.examples())

	allowed := 0
	if sig == syscall.SIGKILL {
		allowed = 1
	}
	if got := after.typedFailed; got > allowed*loadWorkers {
		t.Errorf("%v: %d API reads failed, want at most %d (one in flight per worker): %s", sig, got, allowed*loadWorkers, after.examples())
	}
	if got := after.topFailed; got > allowed {
		t.Errorf("%v: %d kubectl top runs failed, want at most %d: %s", sig, got, allowed, after.examples())
	}
	if newEvents > allowed {
		t.Errorf("%v: %d FailedGetResourceMetric events after the kill, want at most %d", sig, newEvents, allowed)
	}
	// A failed sync sets ScalingActive False until the next sync succeeds,
	// one period later (5.06 s measured); twice that leaves room for a
	// late sync on the shared cores, not for a second failed one.
	if after.hpaEpisodes > allowed || after.hpaLongest > 2*hpaSyncPeriod {
		t.Errorf("%v: the HPA lost ScalingActive=True %d times after the kill (longest %v), want at most %d, each shorter than two sync periods (%v)",
			sig, after.hpaEpisodes, after.hpaLongest, allowed, 2*hpaSyncPeriod)
	}
	if after.unavailable != 0 {
		t.Errorf("%v: an APIService was seen unavailable %d times: %s", sig, after.unavailable, after.examples())
	}
	if after.typedOK == 0 || after.topOK == 0 {
		t.Errorf("the load did not run: %s", after)
	}
	select {
	case <-survivor.Done():
		t.Fatalf("%s, the survivor, ended; see %s", survivor.Name, survivor.Log())
	default:
	}

	// The HPA still scales, on what the survivor serves: 400m of 500m
	// requested is 80% against a 50% target, so two replicas.
	setHALoad(t, ns, "cpu=400m,memory=2Gi")
	waitFor(t, 2*time.Minute, func() error {
		h, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, haApp, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if h.Status.DesiredReplicas < 2 {
			return fmt.Errorf("HPA %s/%s wants %d replicas at 80%% CPU, want 2", ns, haApp, h.Status.DesiredReplicas)
		}
		return nil
	})
	waitTop(t)
}

// renderHA renders manifests/base with the high-availability component,
// through an overlay written in a temporary folder (kustomize takes only
// relative paths to other folders).
func renderHA(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(e.repo, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n",
		rel("manifests/base"), rel("manifests/components/high-availability"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := e.cluster.RenderKustomize(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: PodDisruptionBudget", "--shutdown-delay-duration=", "topologySpreadConstraints", "maxUnavailable: 1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the HA render lacks %q", want)
		}
	}
	return out
}

const haApp = "hpa-target"

// hpaWorkload runs one pod of haApp (500m requested, 100m used) in ns with
// an HPA on 50% CPU, and waits until the HPA reads metrics.
func hpaWorkload(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	labels := map[string]string{"app": haApp}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: haApp, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: "cpu=100m,memory=2Gi"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    *resource.NewMilliQuantity(500, resource.DecimalSI),
						corev1.ResourceMemory: *resource.NewQuantity(4<<30, resource.BinarySI),
					}}}}},
			},
		},
	}
	waitFor(t, time.Minute, func() error { // the namespace's default ServiceAccount comes first
		_, err := e.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	fifty := int32(50)
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: haApp, Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: haApp},
			MinReplicas:    &one,
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &fifty},
			}}},
		},
	}
	if _, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, h, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, func() error {
		h, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, haApp, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !scalingActive(h) || len(h.Status.CurrentMetrics) == 0 || h.Status.CurrentMetrics[0].Resource == nil {
			return fmt.Errorf("HPA %s/%s reads no metrics yet: %+v", ns, haApp, h.Status.Conditions)
		}
		if u := h.Status.CurrentMetrics[0].Resource.Current.AverageUtilization; u == nil || *u < 15 || *u > 25 {
			return fmt.Errorf("HPA %s/%s reads %v%% CPU, want about 20%%", ns, haApp, u)
		}
		return nil
	})
}

func scalingActive(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func setHALoad(t *testing.T, ns, usage string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, fleet.UsageAnnotation, usage)
	if _, err := e.client.AppsV1().Deployments(ns).Patch(context.Background(), haApp, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// failedMetricEvents counts the HPA's FailedGetResourceMetric events in ns
// (an event repeated is one object with a count).
func failedMetricEvents(t *testing.T, ns string) int {
	t.Helper()
	list, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=FailedGetResourceMetric"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range list.Items {
		n += int(max(ev.Count, 1))
	}
	return n
}
