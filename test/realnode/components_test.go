//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The workloads of the installed server's checks.
const (
	quotaMillis = 250 // the quota of a container that would burn a whole core
	memHoldMiB  = 300 // what the memory holder keeps
)

// TestComponentsYAML installs our server as users do, `kubectl apply -f
// manifests/components.yaml` with our image from `make image`, and checks
// it on real containers: both APIServices Available with a caBundle that
// verifies the pod's serving certificate, probes passing, kubectl top of a
// CPU quota and of held memory, kubectl top node against the root
// cgroup's files, our values against the kubelet's own endpoints, a real
// HPA scaling up and down; then `kubectl delete -f` leaves nothing.
func TestComponentsYAML(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sampler, err := startCgroupSampler()
	if err != nil {
		t.Fatalf("reading the root cgroup: %v", err)
	}
	defer sampler.Stop()

	components := filepath.Join(suite.repo, "manifests/components.yaml")
	began := time.Now()
	if _, err := kubectl(ctx, "apply", "-f", components); err != nil {
		t.Fatal(err)
	}
	uninstalled := false
	defer func() {
		if !uninstalled {
			_, _ = kubectl(context.Background(), "delete", "-f", components, "--ignore-not-found", "--wait=false")
		}
	}()
	checkInstalled(ctx, t, "k8s-app=metrics-server")
	t.Logf("installed from manifests/components.yaml: Deployment available, both APIServices Available in %s", time.Since(began).Round(time.Second))

	workloads := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: quota, namespace: default}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: burner
    image: %[2]s
    imagePullPolicy: Never
    args: ["-cpu-millis=1000"]
    resources:
      requests: {cpu: %[3]dm, memory: 32Mi}
      limits: {cpu: %[3]dm, memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: memory, namespace: default}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: holder
    image: %[2]s
    imagePullPolicy: Never
    args: ["-hold-mib=%[4]d"]
    resources:
      requests: {cpu: 10m, memory: 400Mi}
      limits: {cpu: 100m, memory: 400Mi}
`, NodeName, WorkloadImage, quotaMillis, memHoldMiB)
	if _, err := kubectlIn(ctx, workloads, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = kubectl(context.Background(), "delete", "pod", "quota", "memory", "-n", "default", "--wait=false")
	}()
	if err := waitPodsRunning(ctx, "default", "quota", "memory"); err != nil {
		t.Fatal(err)
	}

	t.Run("kubectl-top-pod", func(t *testing.T) {
		// Let the quota and the held memory be in two samples of the
		// server: a rate needs two points after the start.
		q, err := waitTop(ctx, "quota", func(tp top) bool { return within(float64(tp.milli), quotaMillis, 0.10) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl top pod quota: %dm %dMi (a core wanted, quota %dm)", q.milli, q.mib, quotaMillis)
		m, err := waitTop(ctx, "memory", func(tp top) bool { return within(float64(tp.mib), memHoldMiB*1.02, 0.08) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl top pod memory: %dm %dMi (%d MiB held)", m.milli, m.mib, memHoldMiB)
	})

	t.Run("kubectl-top-node-vs-cgroup", func(t *testing.T) {
		checkNodeAgainstCgroup(ctx, t, sampler)
	})

	t.Run("same-as-kubelet-endpoints", func(t *testing.T) {
		checkAgainstKubelet(ctx, t)
	})

	t.Run("hpa", func(t *testing.T) {
		checkHPA(ctx, t)
	})

	if _, err := kubectl(ctx, "delete", "-f", components, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	uninstalled = true
	rendered, err := os.ReadFile(components)
	if err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(ctx, t, rendered, "k8s-app=metrics-server")
}

// installComponents applies manifests/components.yaml, deletes it when t
// ends (after t's deferred calls), and waits until it is installed
// (checkInstalled).
func installComponents(ctx context.Context, t *testing.T) {
	t.Helper()
	components := filepath.Join(suite.repo, "manifests/components.yaml")
	if _, err := kubectl(ctx, "apply", "-f", components); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = kubectl(context.Background(), "delete", "-f", components, "--ignore-not-found", "--wait=true", "--timeout=2m")
	})
	checkInstalled(ctx, t, "k8s-app=metrics-server")
}

// waitTop polls `kubectl top pod` of default/name until ok says yes (for
// at most 90 s) and returns the last reading; the error says what it was.
func waitTop(ctx context.Context, name string, ok func(top) bool) (top, error) {
	var last top
	err := poll(ctx, "kubectl top pod "+name+" in range", 2*time.Second, 90*time.Second, func() error {
		tp, err := kubectlTop(ctx, "pod", "default", name, 30*time.Second)
		if err != nil {
			return err
		}
		last = tp
		if !ok(tp) {
			return fmt.Errorf("kubectl top pod %s: %dm %dMi", name, tp.milli, tp.mib)
		}
		return nil
	})
	return last, err
}

// checkInstalled waits until the Deployment of our server (pods matching
// selector in kube-system) is available with its pod Ready and never
// restarted, and both APIServices Available, then verifies the pod's
// serving certificate with each APIService's caBundle, as the aggregator
// does.
func checkInstalled(ctx context.Context, t *testing.T, selector string) {
	t.Helper()
	if _, err := kubectl(ctx, "rollout", "status", "deployment/metrics-server", "-n", "kube-system", "--timeout=3m"); err != nil {
		desc, _ := kubectl(ctx, "describe", "pods", "-n", "kube-system", "-l", selector)
		logs, _ := kubectl(ctx, "logs", "-n", "kube-system", "-l", selector, "--tail=40")
		t.Fatalf("%v\n%s\nlogs:\n%s", err, desc, logs)
	}
	if err := suite.node.Cluster.WaitAPIServicesAvailable(ctx, 3*time.Minute); err != nil {
		logs, _ := kubectl(ctx, "logs", "-n", "kube-system", "-l", selector, "--tail=40")
		t.Fatalf("%v\nlogs:\n%s", err, logs)
	}
	cs, err := suite.node.Cluster.Client()
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 {
		t.Fatalf("no pod matches %s in kube-system", selector)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		for _, st := range p.Status.ContainerStatuses {
			if st.RestartCount != 0 {
				t.Errorf("pod %s container %s restarted %d times (liveness probe or crash)", p.Name, st.Name, st.RestartCount)
			}
			if st.Image == "" || !strings.HasSuffix(st.Image, suite.image) && !strings.Contains(st.Image, suite.image) {
				t.Errorf("pod %s runs image %q, want %s", p.Name, st.Image, suite.image)
			}
		}
		if !ready {
			t.Errorf("pod %s is not Ready (readiness probe)", p.Name)
		}
		for _, apiService := range []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"} {
			ca, err := apiServiceCABundle(ctx, apiService)
			if err != nil {
				t.Fatal(err)
			}
			port := "10250"
			if ps := p.Spec.Containers[0].Ports; len(ps) > 0 {
				port = fmt.Sprint(ps[0].ContainerPort)
			}
			cert, err := verifyServing(net.JoinHostPort(p.Status.PodIP, port), "metrics-server.kube-system.svc", ca)
			if err != nil {
				t.Errorf("pod %s at %s:%s: its serving certificate does not verify with %s's caBundle: %v", p.Name, p.Status.PodIP, port, apiService, err)
				continue
			}
			t.Logf("pod %s (%s:%s): serving certificate %q (issuer %q, until %s) verifies with %s's caBundle",
				p.Name, p.Status.PodIP, port, cert.Subject.CommonName, cert.Issuer.CommonName, cert.NotAfter.Format("2006-01-02"), apiService)
		}
	}
}

// checkNodeAgainstCgroup compares NodeMetrics with the root cgroup's
// counters read here over the same window: CPU rate and working set.
func checkNodeAgainstCgroup(ctx context.Context, t *testing.T, s *cgroupSampler) {
	tp, err := kubectlTop(ctx, "node", "", NodeName, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl top node: %dm %dMi", tp.milli, tp.mib)
	// Two windows the server served, each against the cgroup.
	var last time.Time
	checked := 0
	err = poll(ctx, "two NodeMetrics windows checked against the root cgroup", 2*time.Second, 2*time.Minute, func() error {
		ms, err := getMetrics(ctx, "/apis/metrics.k8s.io/v1/nodes/"+NodeName)
		if err != nil {
			return err
		}
		m := ms[0]
		if !m.Timestamp.After(last) {
			return fmt.Errorf("no new window after %s", last)
		}
		window, err := time.ParseDuration(m.Window)
		if err != nil {
			return localcluster.Permanent(fmt.Errorf("window %q: %v", m.Window, err))
		}
		end := m.Timestamp
		start := end.Add(-window)
		c0, _, err := s.at(start)
		if err != nil {
			return err
		}
		c1, ws, err := s.at(end)
		if err != nil {
			return err
		}
		cgroupMilli := (c1 - c0) / float64(window) * 1000
		served := m.Usage["cpu"]
		servedMilli := float64(served.MilliValue())
		mem := m.Usage["memory"]
		servedMiB := float64(mem.Value()) / (1 << 20)
		cgroupMiB := float64(ws) / (1 << 20)
		t.Logf("window %s ending %s: CPU served %.0fm, root cgroup %.0fm; memory served %.0fMi, root cgroup working set %.0fMi",
			window, end.Format("15:04:05.000"), servedMilli, cgroupMilli, servedMiB, cgroupMiB)
		last = m.Timestamp
		// The kubelet's timestamp is when cAdvisor read the counters,
		// ours are read every 250ms around it: 10 % or 50m, whichever
		// is more, for the CPU; memory moves with every process here.
		if d := servedMilli - cgroupMilli; d > max(0.10*cgroupMilli, 50) || -d > max(0.10*cgroupMilli, 50) {
			t.Errorf("node CPU served %.0fm, root cgroup %.0fm over the same window", servedMilli, cgroupMilli)
		}
		if !within(servedMiB, cgroupMiB, 0.10) {
			t.Errorf("node memory served %.0fMi, root cgroup working set %.0fMi", servedMiB, cgroupMiB)
		}
		checked++
		if checked < 2 {
			return fmt.Errorf("%d window(s) checked", checked)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkAgainstKubelet reads the kubelet's /metrics/resource and
// /stats/summary with our kubelet client (verified TLS, the admin's
// credentials) around a read of PodMetrics, and compares the workloads.
func checkAgainstKubelet(ctx context.Context, t *testing.T) {
	cluster := suite.node.Cluster
	base, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cluster.Client()
	if err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rest, scheme := kubelet.RestConfigFor(base, kubelet.TLSOptions{CAFile: cluster.PKI.Path(pki.ClusterCA + ".crt")})
	for _, ep := range []kubelet.Endpoint{kubelet.EndpointResource, kubelet.EndpointSummary} {
		client, err := kubelet.NewClient(kubelet.Config{Rest: rest, Scheme: scheme, Endpoint: ep,
			AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, RequestTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		b0, err := client.GetMetrics(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := getMetrics(ctx, "/apis/metrics.k8s.io/v1/namespaces/default/pods")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		b1, err := client.GetMetrics(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct{ pod, container string }{{"quota", "burner"}, {"memory", "holder"}} {
			c0, c1 := find(b0, "default", w.pod, w.container), find(b1, "default", w.pod, w.container)
			if c0 == nil || c1 == nil || c1.Timestamp <= c0.Timestamp {
				t.Errorf("%s: the kubelet gave no two samples of %s/%s", ep, w.pod, w.container)
				continue
			}
			kubeletMilli := float64(c1.CPU-c0.CPU) / float64(c1.Timestamp-c0.Timestamp) * 1000
			kubeletMiB := float64(c1.Memory) / (1 << 20)
			var servedMilli, servedMiB float64
			found := false
			for _, p := range ours {
				if p.Metadata.Name != w.pod {
					continue
				}
				for _, c := range p.Containers {
					if c.Name != w.container {
						continue
					}
					cpu, mem := c.Usage["cpu"], c.Usage["memory"]
					servedMilli, servedMiB, found = float64(cpu.MilliValue()), float64(mem.Value())/(1<<20), true
					// Swap is served exactly where the kubelet reports it.
					swap, served := c.Usage["swap"]
					switch reported := c1.Has&points.HasSwap != 0; {
					case reported != served:
						t.Errorf("%s: %s/%s: the kubelet reports swap %v, served %v (%v)", ep, w.pod, w.container, reported, served, c.Usage)
					case reported && swap.Value() != int64(c1.Swap) && swap.Value() != int64(c0.Swap):
						t.Errorf("%s: %s/%s: swap served %s, the kubelet says %d", ep, w.pod, w.container, swap.String(), c1.Swap)
					case reported:
						t.Logf("%s: %s/%s: swap %d bytes reported and served", ep, w.pod, w.container, c1.Swap)
					}
				}
			}
			if !found {
				t.Errorf("PodMetrics has no %s/%s", w.pod, w.container)
				continue
			}
			t.Logf("%s: %s/%s kubelet %.0fm %.1fMi, served %.0fm %.1fMi", ep, w.pod, w.container, kubeletMilli, kubeletMiB, servedMilli, servedMiB)
			if w.pod == "quota" && !within(servedMilli, kubeletMilli, 0.10) {
				t.Errorf("%s: %s CPU served %.0fm, the kubelet's counters give %.0fm", ep, w.pod, servedMilli, kubeletMilli)
			}
			// A newer sample of a small container moves by a few pages.
			if d := servedMiB - kubeletMiB; d > max(0.05*kubeletMiB, 1) || -d > max(0.05*kubeletMiB, 1) {
				t.Errorf("%s: %s memory served %.1fMi, the kubelet says %.1fMi", ep, w.pod, servedMiB, kubeletMiB)
			}
		}
	}
}

// checkHPA runs a Deployment whose pods burn 300m against a request of
// 100m under an HPA (target 50 %, 1 to 3 replicas): it must scale up to 3,
// and back to 1 once the pods stop burning.
func checkHPA(ctx context.Context, t *testing.T) {
	spec := func(burn int) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: hpa-burner, namespace: default}
spec:
  selector: {matchLabels: {app: hpa-burner}}
  template:
    metadata: {labels: {app: hpa-burner}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      containers:
      - name: burner
        image: %s
        imagePullPolicy: Never
        args: ["-cpu-millis=%d"]
        resources:
          requests: {cpu: 100m, memory: 16Mi}
          limits: {cpu: 400m, memory: 32Mi}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa-burner, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hpa-burner}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`, WorkloadImage, burn)
	}
	if _, err := kubectlIn(ctx, spec(300), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = kubectl(context.Background(), "delete", "hpa,deployment", "hpa-burner", "-n", "default", "--wait=false")
	}()
	began := time.Now()
	waitReplicas := func(want int, limit time.Duration) {
		t.Helper()
		var last string
		err := poll(ctx, fmt.Sprintf("HPA hpa-burner at %d replicas", want), 2*time.Second, limit, func() error {
			out, err := kubectl(ctx, "get", "hpa", "hpa-burner", "-n", "default", "-o",
				`jsonpath={.status.currentReplicas} {.status.desiredReplicas} {.status.currentMetrics[0].resource.current.averageUtilization}`)
			if err != nil {
				return err
			}
			if out != last {
				t.Logf("after %s: HPA current, desired replicas, CPU utilization %%: %s", time.Since(began).Round(time.Second), out)
				last = out
			}
			f := strings.Fields(out)
			if len(f) < 2 || f[0] != fmt.Sprint(want) || f[1] != fmt.Sprint(want) {
				return fmt.Errorf("HPA says %q", out)
			}
			return nil
		})
		if err != nil {
			ev, _ := kubectl(ctx, "describe", "hpa", "hpa-burner", "-n", "default")
			t.Fatalf("%v\n%s", err, ev)
		}
	}
	waitReplicas(3, 4*time.Minute)
	t.Logf("scaled up to 3 replicas in %s", time.Since(began).Round(time.Second))
	if _, err := kubectlIn(ctx, spec(0), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	waitReplicas(1, 4*time.Minute)
	t.Logf("scaled down to 1 replica %s after the load stopped", time.Since(began).Round(time.Second))
}

// checkNothingLeft fails when an object of rendered (the manifest or the
// chart's rendering that was installed) is still there, or a pod of ours
// (matching selector in kube-system).
func checkNothingLeft(ctx context.Context, t *testing.T, rendered []byte, selector string) {
	t.Helper()
	objs, err := localcluster.Decode(rendered)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) < 5 {
		t.Fatalf("the rendered install has %d objects: not a metrics server", len(objs))
	}
	err = poll(ctx, "nothing of ours left", time.Second, 2*time.Minute, func() error {
		var left []string
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			res := strings.ToLower(gvk.Kind)
			if gvk.Group != "" {
				res += "." + gvk.Group
			}
			args := []string{"get", res, o.GetName(), "--ignore-not-found", "-o", "name"}
			if ns := o.GetNamespace(); ns != "" {
				args = append(args, "-n", ns)
			}
			out, err := kubectl(ctx, args...)
			if err != nil {
				return err
			}
			left = append(left, strings.Fields(out)...)
		}
		out, err := kubectl(ctx, "get", "pods", "-n", "kube-system", "-l", selector, "-o", "name")
		if err != nil {
			return err
		}
		left = append(left, strings.Fields(out)...)
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("none of the %d objects installed is left, and no pod", len(objs))
}
