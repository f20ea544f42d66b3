package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// Kubernetes' own hollow kubelet (k8s.io/kubernetes/cmd/kubemark v1.37.2,
// --morph=kubelet, fake runtime) is not a third implementation here. It
// listens on 0.0.0.0 (pkg/kubemark sets the address, no flag changes it),
// so it was tried in a private network namespace with the kube-apiserver
// reached over a unix socket: it registers and turns Ready, but writes no
// node address, serves port 10250 over plain HTTP (no TLS options), and its
// fake cAdvisor reports no containers, so /stats/summary answers 500
// ("failed to get root cgroup stats: failed to get cgroup stats for "/":
// unexpected number of containers: 0") and /metrics/resource carries only
// resource_scrape_error 1: nothing to scrape.

// kwok serves every node it emulates on one loopback address, apart from
// the fleet's nodes (127.1.x.y) and pods (127.2.x.y).
var kwokIP = net.IPv4(127, 9, 0, 1)

const (
	kwokNamespace = "e2e-kwok"
	// kwokLabel selects kwok's nodes for kubectl top.
	kwokLabel = "e2e.kubemetrics.io/kwok"
	// The usage-from-annotation ClusterResourceUsage of kwok's module reads
	// these pod annotations, per container, and uses 1m and 1Mi without them.
	kwokUsageCPU    = "kwok.x-k8s.io/usage-cpu"
	kwokUsageMemory = "kwok.x-k8s.io/usage-memory"
)

// kwokNodes have the size of production machines: 64 cores, 256 GiB.
var kwokNodes = []string{"e2e-kwok-0", "e2e-kwok-1"}

const (
	kwokNodeMilliCPU = 64_000
	kwokNodeMemoryMi = 256 << 10
)

// kwokPod is a pod bound to a kwok node; every container of it uses the
// same CPU and memory (kwok reads the annotations per pod).
type kwokPod struct {
	name, node string
	containers []string
	cpu        string // kwok.x-k8s.io/usage-cpu, "" for none
	memory     string // kwok.x-k8s.io/usage-memory, "" for none
	milliCPU   int64  // expected per container
	memoryMi   int64  // expected per container
}

var kwokPods = []kwokPod{
	// A database past the 17.2 GiB that once broke /metrics/resource decoding.
	{name: "postgres", node: "e2e-kwok-0", containers: []string{"postgres"}, cpu: "2500m", memory: "18Gi", milliCPU: 2500, memoryMi: 18 << 10},
	{name: "web", node: "e2e-kwok-0", containers: []string{"app", "proxy"}, cpu: "750m", memory: "1536Mi", milliCPU: 750, memoryMi: 1536},
	{name: "jvm", node: "e2e-kwok-1", containers: []string{"jvm"}, cpu: "6", memory: "24Gi", milliCPU: 6000, memoryMi: 24 << 10},
	// No annotations: the module's defaults.
	{name: "idle", node: "e2e-kwok-1", containers: []string{"idle"}, milliCPU: 1, memoryMi: 1},
}

// TestKwokNodes runs kwok v0.8.0, a second kubelet implementation, with the
// metrics-resource Metric and the usage-from-annotation ClusterResourceUsage
// of its own module, and checks kubectl top against the pods' annotations.
// Our shared server scrapes kwok with the flags it uses for the fleet: kwok
// presents a serving certificate from the cluster's kubelet CA, writes its
// address and port into the node status, and the node annotation
// metrics.k8s.io/resource-metrics-path points at the node's metrics.
//
// kwok reports container_start_time_seconds as the seconds since the pod
// started, a value that grows with every scrape; its pods are served only
// when such a value is not taken for a restart.
func TestKwokNodes(t *testing.T) {
	ctx := context.Background()
	started := time.Now()
	kwok, err := cluster.StartKwok(ctx, localcluster.KwokOptions{
		Binary: filepath.Join(repoRoot, "test/.cache/bin/kwok-"+localcluster.KwokVersion, "kwok"),
		IP:     kwokIP,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteKwokObjects(t, kwok) })
	createKwokObjects(ctx, t)
	waitRunning(ctx, t, kwokNamespace, "", len(kwokPods))
	t.Logf("kwok and its %d pods running after %v", len(kwokPods), time.Since(started).Round(time.Second))

	t.Run("top node", func(t *testing.T) {
		want := map[string][2]int64{} // node -> millicores, MiB
		for _, p := range kwokPods {
			n := int64(len(p.containers))
			w := want[p.node]
			want[p.node] = [2]int64{w[0] + p.milliCPU*n, w[1] + p.memoryMi*n}
		}
		kubectlTop(t, func(rows [][]string) error {
			if len(rows) != len(kwokNodes) {
				return fmt.Errorf("%d rows, want the %d kwok nodes", len(rows), len(kwokNodes))
			}
			for _, r := range rows {
				w, ok := want[r[0]]
				if !ok {
					return fmt.Errorf("row %v is not a kwok node", r)
				}
				// A node scraped fewer than twice has no rate yet:
				// kubectl shows it as <unknown>, so wait.
				if r[1] == "<unknown>" || r[3] == "<unknown>" {
					return fmt.Errorf("node %s has no metrics yet", r[0])
				}
				if got := milli(t, r[1]); !closeCPU(got, w[0]) {
					return fmt.Errorf("node %s CPU %dm, want %dm within 5%%", r[0], got, w[0])
				}
				if got := mi(t, r[3]); got != w[1] {
					return fmt.Errorf("node %s memory %dMi, want %dMi", r[0], got, w[1])
				}
				// kubectl rounds down against allocatable.
				if got, want := r[4], strconv.FormatInt(w[1]*100/kwokNodeMemoryMi, 10)+"%"; got != want {
					return fmt.Errorf("node %s MEMORY%% %s, want %s", r[0], got, want)
				}
			}
			return nil
		}, "node", "-l", kwokLabel+"=true")
	})

	t.Run("top pod", func(t *testing.T) {
		kubectlTop(t, func(rows [][]string) error {
			seen := map[string]bool{}
			for _, r := range rows {
				p, ok := findKwokPod(r[0])
				if !ok {
					return fmt.Errorf("row %v is not a kwok pod", r)
				}
				seen[p.name] = true
				n := int64(len(p.containers))
				if got := milli(t, r[1]); !closeCPU(got, p.milliCPU*n) {
					return fmt.Errorf("pod %s CPU %dm, want %dm within 5%%", p.name, got, p.milliCPU*n)
				}
				if got := mi(t, r[2]); got != p.memoryMi*n {
					return fmt.Errorf("pod %s memory %dMi, want %dMi", p.name, got, p.memoryMi*n)
				}
			}
			if len(seen) != len(kwokPods) {
				return fmt.Errorf("%d of the %d kwok pods served", len(seen), len(kwokPods))
			}
			return nil
		}, "pod", "-n", kwokNamespace)
	})

	t.Run("top pod containers", func(t *testing.T) {
		kubectlTop(t, func(rows [][]string) error {
			want := 0
			for _, p := range kwokPods {
				want += len(p.containers)
			}
			if len(rows) != want {
				return fmt.Errorf("%d container rows, want %d", len(rows), want)
			}
			for _, r := range rows {
				p, ok := findKwokPod(r[0])
				if !ok || !strings.Contains(","+strings.Join(p.containers, ",")+",", ","+r[1]+",") {
					return fmt.Errorf("row %v is not a kwok container", r)
				}
				if got := milli(t, r[2]); !closeCPU(got, p.milliCPU) {
					return fmt.Errorf("container %s/%s CPU %dm, want %dm within 5%%", p.name, r[1], got, p.milliCPU)
				}
				if got := mi(t, r[3]); got != p.memoryMi {
					return fmt.Errorf("container %s/%s memory %dMi, want %dMi", p.name, r[1], got, p.memoryMi)
				}
			}
			return nil
		}, "pod", "-n", kwokNamespace, "--containers")
	})

	t.Run("typed client window", func(t *testing.T) {
		// kwok's samples carry no timestamps: the window is the time
		// between two of our requests, never zero and never in the future.
		list, err := metricsClient(t).MetricsV1().PodMetricses(kwokNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != len(kwokPods) {
			t.Fatalf("v1 lists %d kwok pods, want %d", len(list.Items), len(kwokPods))
		}
		for _, m := range list.Items {
			if w := m.Window.Duration; w <= 0 || w > 3*resolution {
				t.Errorf("pod %s window %v is not a sample interval", m.Name, w)
			}
			if ts := m.Timestamp.Time; ts.After(time.Now().Add(time.Second)) || time.Since(ts) > 3*resolution {
				t.Errorf("pod %s timestamp %v is not recent", m.Name, ts)
			}
		}
	})
}

func findKwokPod(name string) (kwokPod, bool) {
	for _, p := range kwokPods {
		if p.name == name {
			return p, true
		}
	}
	return kwokPod{}, false
}

// createKwokObjects creates kwok's nodes, tainted so the scheduler keeps
// other tests' pods off them, and the pods bound to them.
func createKwokObjects(ctx context.Context, t *testing.T) {
	t.Helper()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(kwokNodeMilliCPU, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(kwokNodeMemoryMi<<20, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
	taint := corev1.Taint{Key: localcluster.KwokNodeAnnotation, Value: "fake", Effect: corev1.TaintEffectNoSchedule}
	for _, name := range kwokNodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:   name,
				Labels: map[string]string{kwokLabel: "true"},
				Annotations: map[string]string{
					localcluster.KwokNodeAnnotation:        "fake",
					"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + name + "/metrics/resource",
				},
			},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{taint}},
			// kwok keeps the capacity it finds and adds the address and port.
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating kwok node %s: %v", name, err)
		}
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kwokNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, func() error {
		_, err := client.CoreV1().ServiceAccounts(kwokNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	for _, p := range kwokPods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: kwokNamespace, Annotations: map[string]string{}},
			Spec: corev1.PodSpec{
				NodeName:    p.node,
				Tolerations: []corev1.Toleration{{Key: taint.Key, Operator: corev1.TolerationOpEqual, Value: taint.Value, Effect: taint.Effect}},
			},
		}
		if p.cpu != "" {
			pod.Annotations[kwokUsageCPU] = p.cpu
		}
		if p.memory != "" {
			pod.Annotations[kwokUsageMemory] = p.memory
		}
		for _, c := range p.containers {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "registry.invalid/" + c + ":1"})
		}
		if _, err := client.CoreV1().Pods(kwokNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating kwok pod %s: %v", p.name, err)
		}
	}
}

// deleteKwokObjects removes kwok's pods and nodes, so later tests see only
// the fleet, then stops kwok.
func deleteKwokObjects(t *testing.T, kwok *localcluster.Kwok) {
	ctx := context.Background()
	now := int64(0)
	for _, p := range kwokPods {
		if err := client.CoreV1().Pods(kwokNamespace).Delete(ctx, p.name, metav1.DeleteOptions{GracePeriodSeconds: &now}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting kwok pod %s: %v", p.name, err)
		}
	}
	for _, name := range kwokNodes {
		if err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting kwok node %s: %v", name, err)
		}
	}
	if err := client.CoreV1().Namespaces().Delete(ctx, kwokNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", kwokNamespace, err)
	}
	kwok.Stop()
}
