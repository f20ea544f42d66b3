package e2econsumers

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// usage is what we serve of a node or container: CPU in millicores and
// memory in bytes; keys names every key served, sorted (cpu and memory,
// and swap and ephemeral-storage where we serve them).
type usage struct {
	milliCPU, memory int64
	keys             []string
}

func usageOf(l corev1.ResourceList) usage {
	u := usage{milliCPU: l.Cpu().MilliValue(), memory: l.Memory().Value()}
	for k := range l {
		u.keys = append(u.keys, string(k))
	}
	slices.Sort(u.keys)
	return u
}

// allKeys is what we serve of a container or node with swap, with
// --kubelet-ephemeral-storage: the keys beyond cpu and memory that the
// consumers must pass over.
var allKeys = []string{"cpu", "ephemeral-storage", "memory", "swap"}

// metricsClient is a typed metrics.k8s.io client with the admin identity,
// reading through the kube-apiserver as the consumers do.
func metricsClient() (metricsclient.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.suite.Cluster.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	return metricsclient.NewForConfig(cfg)
}

// servedContainers is what we serve (v1beta1) of container in each pod of
// namespace ns, by pod name.
func servedContainers(ctx context.Context, ns, container string) (map[string]usage, error) {
	mc, err := metricsClient()
	if err != nil {
		return nil, err
	}
	list, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing PodMetrics in %s: %w", ns, err)
	}
	out := map[string]usage{}
	for _, pm := range list.Items {
		for _, c := range pm.Containers {
			if c.Name == container {
				out[pm.Name] = usageOf(c.Usage)
			}
		}
	}
	return out, nil
}

// servedNode is what we serve (v1beta1) of node name.
func servedNode(ctx context.Context, name string) (usage, error) {
	mc, err := metricsClient()
	if err != nil {
		return usage{}, err
	}
	nm, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return usage{}, fmt.Errorf("NodeMetrics of %s: %w", name, err)
	}
	return usageOf(nm.Usage), nil
}

// waitRunning waits until n pods of namespace ns run (the fleet plays
// their kubelet).
func waitRunning(ctx context.Context, ns string, n int) error {
	return localcluster.Poll(ctx, fmt.Sprintf("%d pods running in %s", n, ns), time.Second, 2*time.Minute, func() error {
		list, err := e.suite.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		if running != n {
			return fmt.Errorf("%d of %d pods running", running, n)
		}
		return nil
	})
}

// freePort is a free TCP port on 127.0.0.1, for a consumer's own metrics
// and health endpoint.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// fleetNode is the load the fleet reports for node name: what its shape
// uses outside pods plus each container's annotated usage (fleet's load
// model) of the running pods bound to it.
func fleetNode(ctx context.Context, name string) (usage, error) {
	shape, ok := e.fleet.NodeShape(name)
	if !ok {
		return usage{}, fmt.Errorf("node %s is not the fleet's", name)
	}
	u := usage{milliCPU: shape.SystemMilliCPU, memory: shape.SystemMemory}
	pods, err := e.suite.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return usage{}, err
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		cpu, mem, err := fleet.ParseUsage(p.Annotations[fleet.UsageAnnotation])
		if err != nil {
			return usage{}, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		n := int64(len(p.Spec.Containers))
		u.milliCPU += n * cpu
		u.memory += n * mem
	}
	return u, nil
}

// near says whether a CPU figure in millicores is want's, up to the rate's
// jitter between two samples (2 % and 2m).
func near(got, want int64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return float64(d) <= 0.02*float64(want)+2
}
