package e2eswap

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The restart test's workload: two pods of two containers, each container
// using 80m of a 100m request, under an HPA whose target (90 %) is above
// their 80 %: ceil(80/90 x 2) = 2, so it should stay at two replicas.
const (
	restartNamespace  = "restart"
	restartApp        = "restart"
	restartReplicas   = 2
	restartMilliCPU   = 80
	restartRequest    = 100
	restartTarget     = 90
	restartContainers = 2
	// restartedContainer is the container restarted, in the first pod by
	// name.
	restartedContainer = "app"
	// podMilliCPU is the true usage of a pod: the restart changes no
	// container's load.
	podMilliCPU = restartContainers * restartMilliCPU
	// cpuTolerance is how far our served pod CPU may be from the truth,
	// in millicores (5 %): the restarted container's first rate runs from
	// its start time, which /metrics/resource gives to the nanosecond, to
	// a sample time it gives to the millisecond, over about 8 s.
	cpuTolerance = podMilliCPU / 20
	// restartSamples is how many times, a second apart, the test reads
	// what is served after the restart: three resolutions and a half.
	restartSamples = 35
	// afterScrape is how long after a scrape of the pod's node the
	// container restarts: the next scrape is a resolution minus this
	// later, both servers' restart logic on a window of about 8 s.
	afterScrape = 2 * time.Second
)

// restartSample is what one read after the restart saw: the restarted
// pod in PodMetrics v1beta1 through the kube-apiserver (as the HPA reads
// it) and the HPA's status.
type restartSample struct {
	since time.Duration // since the restart
	// present: the pod is in the PodMetrics list; podMilli and appMilli
	// its CPU and the restarted container's, in millicores.
	present              bool
	containers           int
	podMilli, appMilli   float64
	window               time.Duration
	utilization          int32 // -1: no current metric
	desired, current     int32
	scalingActive, cause string
}

// restartRun is one server's run: what it served and what the HPA
// computed, a second apart, from the restart on.
type restartRun struct {
	server  string
	pod     string
	samples []restartSample
	// scrapes counts the scrapes of the pod's node after the restart.
	scrapes int
}

// TestHPAAcrossContainerRestart: what the HPA of kube-controller-manager
// 1.37 computes when one container of one pod restarts, with our server
// and with upstream metrics-server v0.9.0, both at a 10 s resolution on
// /metrics/resource. The kubelet (the fleet's RestartContainer, 2 s after
// a scrape of the pod's node) reports the new container with its start
// time and a CPU counter from 0; its load is unchanged, so the truth is
// the same 160m for the pod (two containers at 80m) and 80 % for the HPA.
//
// Ours takes the new container's start time, which lies after its latest
// sample, as the earlier point of its first rate (pkg/storage/series.go):
// the test asserts the pod never leaves PodMetrics, its CPU stays within
// 5 % of 160m and the HPA keeps computing 80 % (at least 76) and 2
// replicas, ScalingActive True. Upstream v0.9.0 (pkg/storage/pod.go)
// keeps no earlier point for a container whose start time lies after the
// latest sample, unless the new sample is 10 s or more after the start
// and less than a resolution, which a 10 s resolution never allows, and
// drops a pod with any container without one: the test asserts that it
// drops the pod for one resolution and serves it again after; what the
// HPA computes meanwhile it only logs, beside ours (measured: 80 % and 2
// replicas, as with ours: on a scale-down the replica calculator counts
// a missing pod at 100 % of its request, (80 + 100) / 2 = 90 % is the
// target, and the utilization it reports is the served pod's).
func TestHPAAcrossContainerRestart(t *testing.T) {
	ctx := context.Background()
	upstream := upstreamBinary(ctx, t)
	cfg, err := clientcmd.BuildConfigFromFlags("", e.suite.Cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := restartDeployment()
	deployWithHPA(ctx, t, d, restartHPA(d))

	startServer(t, "resource")
	ours := watchRestart(ctx, t, mc, "kubemetrics")
	e.suite.Cluster.StopMetricsServer()

	ms := localcluster.MetricsServer{
		Binary:    upstream,
		Manifests: filepath.Join(e.suite.Repo, "manifests/overlays/local"),
		Args:      []string{"--metric-resolution=" + resolution.String(), "--kubelet-request-timeout=" + timeout.String(), "-v=2"},
		// Upstream v0.9.0 serves v1beta1 only.
		WaitFor: []string{"v1beta1.metrics.k8s.io"},
	}
	if _, err := e.suite.Cluster.StartMetricsServer(ctx, ms); err != nil {
		t.Fatalf("starting upstream v0.9.0: %v", err)
	}
	t.Cleanup(e.suite.Cluster.StopMetricsServer)
	up := watchRestart(ctx, t, mc, "upstream v0.9.0")

	t.Logf("after restarting %s of one pod (true usage: pod %dm, HPA %d %% of a %d %% target, %d replicas), read every second:\n%s",
		restartedContainer, podMilliCPU, 100*restartMilliCPU/restartRequest, restartTarget, restartReplicas, sideBySide(ours, up))
	checkOurs(t, ours)
	checkUpstream(t, up)
}

func restartDeployment() *appsv1.Deployment {
	replicas := int32(restartReplicas)
	labels := map[string]string{"app": restartApp}
	request := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(restartRequest, resource.DecimalSI)}}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: restartApp, Namespace: restartNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					fleet.UsageAnnotation: fmt.Sprintf("cpu=%dm,memory=64Mi", restartMilliCPU)}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: restartedContainer, Image: "registry.invalid/app:1", Resources: request},
					{Name: "sidecar", Image: "registry.invalid/sidecar:1", Resources: request},
				}},
			},
		},
	}
}

// restartHPA: minReplicas 1, so a lower utilization would show as fewer
// desired replicas; no scale-down stabilization, so desiredReplicas is
// what each sync computed.
func restartHPA(d *appsv1.Deployment) *autoscalingv2.HorizontalPodAutoscaler {
	hpa := resourceHPA(d, corev1.ResourceCPU, utilization(restartTarget), 1, 4)
	noWindow := int32(0)
	hpa.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &noWindow}}
	return hpa
}

// watchRestart waits until the running server serves both pods and the
// HPA computes from it, restarts one container 2 s after a scrape of its
// node and reads, every second, the pod's PodMetrics and the HPA.
func watchRestart(ctx context.Context, t *testing.T, mc metricsclient.Interface, server string) restartRun {
	t.Helper()
	c := e.suite.Client
	var pods []corev1.Pod
	if err := localcluster.Poll(ctx, server+": both pods served and the HPA at 80 %", time.Second, 3*time.Minute, func() error {
		list, err := c.CoreV1().Pods(restartNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + restartApp})
		if err != nil {
			return err
		}
		pods = list.Items
		served, err := mc.MetricsV1beta1().PodMetricses(restartNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + restartApp})
		if err != nil {
			return err
		}
		if len(pods) != restartReplicas || len(served.Items) != restartReplicas {
			return fmt.Errorf("%d pods, %d served; want %d", len(pods), len(served.Items), restartReplicas)
		}
		s := hpaSample(ctx, t)
		if s.utilization != 100*restartMilliCPU/restartRequest || s.scalingActive != "True" {
			return fmt.Errorf("HPA at %d %%, ScalingActive %s %s", s.utilization, s.scalingActive, s.cause)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Two HPA periods more: its status now comes from this server, not
	// from the one before.
	time.Sleep(2 * e.suite.Cluster.HPASyncPeriod())
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	pod := pods[0]
	node := pod.Spec.NodeName

	hits := e.fleet.Hits(node, "/metrics/resource")
	if err := localcluster.Poll(ctx, server+": a scrape of "+node, 100*time.Millisecond, 2*resolution, func() error {
		if e.fleet.Hits(node, "/metrics/resource") == hits {
			return fmt.Errorf("no scrape since %d", hits)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(afterScrape)
	hits = e.fleet.Hits(node, "/metrics/resource")
	restarted, err := e.fleet.RestartContainer(ctx, restartNamespace, pod.Name, restartedContainer)
	if err != nil {
		t.Fatal(err)
	}
	run := restartRun{server: server, pod: pod.Name}
	for i := range restartSamples {
		next := restarted.Add(time.Duration(i+1) * time.Second)
		s := hpaSample(ctx, t)
		s.since = time.Since(restarted).Round(100 * time.Millisecond)
		served, err := mc.MetricsV1beta1().PodMetricses(restartNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + restartApp})
		if err != nil {
			t.Fatalf("%s: reading PodMetrics %v after the restart: %v", server, s.since, err)
		}
		for _, pm := range served.Items {
			if pm.Name != pod.Name {
				continue
			}
			s.present, s.containers, s.window = true, len(pm.Containers), pm.Window.Duration
			for _, cm := range pm.Containers {
				m := float64(cm.Usage.Cpu().ScaledValue(resource.Nano)) / 1e6
				s.podMilli += m
				if cm.Name == restartedContainer {
					s.appMilli = m
				}
			}
		}
		run.samples = append(run.samples, s)
		time.Sleep(time.Until(next))
	}
	run.scrapes = e.fleet.Hits(node, "/metrics/resource") - hits
	got, err := c.CoreV1().Pods(restartNamespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range got.Status.ContainerStatuses {
		if st.Name == restartedContainer && st.RestartCount == 0 {
			t.Errorf("%s: %s of %s shows no restart in its status", server, restartedContainer, pod.Name)
		}
	}
	return run
}

// hpaSample reads the HPA's status: its CPU utilization, desired and
// current replicas, and its ScalingActive condition.
func hpaSample(ctx context.Context, t *testing.T) restartSample {
	t.Helper()
	h, err := e.suite.Client.AutoscalingV2().HorizontalPodAutoscalers(restartNamespace).Get(ctx, restartApp, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the HPA: %v", err)
	}
	s := restartSample{utilization: -1, desired: h.Status.DesiredReplicas, current: h.Status.CurrentReplicas}
	for _, m := range h.Status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Current.AverageUtilization != nil {
			s.utilization = *m.Resource.Current.AverageUtilization
		}
	}
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			s.scalingActive, s.cause = string(c.Status), c.Reason
		}
	}
	return s
}

// checkOurs: the pod is never missing, its CPU stays within cpuTolerance
// of the truth and the HPA neither dips nor scales.
func checkOurs(t *testing.T, r restartRun) {
	t.Helper()
	if r.scrapes < 2 {
		t.Errorf("%s scraped the pod's node %d times after the restart, want at least 2: the restart was not seen", r.server, r.scrapes)
	}
	for _, s := range r.samples {
		switch {
		case !s.present || s.containers != restartContainers:
			t.Errorf("%s, %v after the restart: pod %s served %v with %d containers, want always, with %d", r.server, s.since, r.pod, s.present, s.containers, restartContainers)
		case math.Abs(s.podMilli-podMilliCPU) > cpuTolerance:
			t.Errorf("%s, %v after the restart: pod %s at %.1fm, want %dm ± %dm", r.server, s.since, r.pod, s.podMilli, podMilliCPU, cpuTolerance)
		}
		if want := int32(100*restartMilliCPU/restartRequest) - 100*cpuTolerance/(restartContainers*restartRequest); s.utilization < want || s.desired != restartReplicas || s.scalingActive != "True" {
			t.Errorf("%s, %v after the restart: the HPA computed %d %% and %d replicas (ScalingActive %s %s), want at least %d %% and %d", r.server, s.since,
				s.utilization, s.desired, s.scalingActive, s.cause, want, restartReplicas)
		}
	}
}

// checkUpstream asserts what upstream v0.9.0 does every time (see the
// test's doc): the pod leaves PodMetrics for one stretch of at most two
// resolutions and comes back.
func checkUpstream(t *testing.T, r restartRun) {
	t.Helper()
	first, last := -1, -1
	for i, s := range r.samples {
		if !s.present {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	switch {
	case first < 0:
		t.Errorf("%s never dropped pod %s after the restart; v0.9.0 keeps no earlier point for the new container", r.server, r.pod)
	case last-first+1 > int(2*resolution/time.Second):
		t.Errorf("%s dropped pod %s from %v to %v after the restart, more than two resolutions", r.server, r.pod, r.samples[first].since, r.samples[last].since)
	case last == len(r.samples)-1:
		t.Errorf("%s still drops pod %s %v after the restart", r.server, r.pod, r.samples[last].since)
	default:
		for _, s := range r.samples[first : last+1] {
			if s.present {
				t.Errorf("%s served pod %s at %v between two reads without it", r.server, r.pod, s.since)
			}
		}
	}
}

// sideBySide renders both runs, a row per second.
func sideBySide(a, b restartRun) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| s | %[1]s: pod CPU | %[1]s: %[3]s | %[1]s: HPA %% / desired / ScalingActive | %[2]s: pod CPU | %[2]s: %[3]s | %[2]s: HPA %% / desired / ScalingActive |\n", a.server, b.server, restartedContainer)
	sb.WriteString("|---|---|---|---|---|---|---|\n")
	cell := func(r restartRun, i int) string {
		if i >= len(r.samples) {
			return " | | "
		}
		s := r.samples[i]
		pod, app := "missing", "-"
		if s.present {
			pod, app = fmt.Sprintf("%.1fm (window %v)", s.podMilli, s.window.Round(time.Millisecond)), fmt.Sprintf("%.1fm", s.appMilli)
		}
		return fmt.Sprintf("%s | %s | %d / %d / %s %s", pod, app, s.utilization, s.desired, s.scalingActive, s.cause)
	}
	for i := range max(len(a.samples), len(b.samples)) {
		since := ""
		if i < len(a.samples) {
			since = fmt.Sprintf("%.1f", a.samples[i].since.Seconds())
		}
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", since, cell(a, i), cell(b, i))
	}
	fmt.Fprintf(&sb, "scrapes of the pod's node after the restart: %s %d, %s %d", a.server, a.scrapes, b.server, b.scrapes)
	return sb.String()
}
