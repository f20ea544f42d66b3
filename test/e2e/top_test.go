package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

var (
	topOnce sync.Once
	topPods map[string]expected // namespace/name -> what it should show
)

type expected struct {
	node       string
	containers []string
	milliCPU   int64 // per container
	memoryMi   int64 // per container
}

var topApps = []app{
	{namespace: "e2e-top", name: "big", replicas: 2, containers: []string{"app"}, milliCPU: 300, memoryMi: 128},
	{namespace: "e2e-top", name: "small", replicas: 2, containers: []string{"app"}, milliCPU: 50, memoryMi: 48},
	{namespace: "e2e-other", name: "duo", replicas: 1, containers: []string{"main", "sidecar"}, milliCPU: 100, memoryMi: 40},
}

// setupTop deploys the apps the kubectl top tests read, once.
func setupTop(t *testing.T) map[string]expected {
	t.Helper()
	topOnce.Do(func() {
		ctx := context.Background()
		topPods = map[string]expected{}
		for _, a := range topApps {
			for _, p := range deploy(ctx, t, a) {
				topPods[p.Namespace+"/"+p.Name] = expected{node: p.Spec.NodeName, containers: a.containers, milliCPU: a.milliCPU, memoryMi: a.memoryMi}
			}
		}
	})
	if topPods == nil {
		t.Fatal("deploying the apps failed in an earlier test")
	}
	return topPods
}

// kubectlTop runs kubectl top until its output passes check (pods warming
// up may be missing from the first answers), then returns that output.
func kubectlTop(t *testing.T, check func(rows [][]string) error, args ...string) string {
	t.Helper()
	var out string
	waitFor(t, 3*resolution+30*time.Second, func() error {
		var err error
		out, err = cluster.Kubectl(context.Background(), append([]string{"top"}, args...)...)
		if err != nil {
			return err
		}
		_, rows := table(out)
		if err := check(rows); err != nil {
			return fmt.Errorf("%w:\n%s", err, out)
		}
		return nil
	})
	return out
}

// atLeast passes once there are n rows.
func atLeast(n int) func([][]string) error {
	return func(rows [][]string) error {
		if len(rows) < n {
			return fmt.Errorf("%d rows, want %d", len(rows), n)
		}
		return nil
	}
}

func TestKubectlTopPods(t *testing.T) {
	pods := setupTop(t)
	for _, proto := range []string{"--use-protocol-buffers=true", "--use-protocol-buffers=false"} {
		t.Run(proto, func(t *testing.T) {
			t.Run("all namespaces", func(t *testing.T) {
				kubectlTop(t, func(rows [][]string) error {
					seen := 0
					for _, r := range rows {
						want, ok := pods[r[0]+"/"+r[1]]
						if !ok {
							continue
						}
						seen++
						n := int64(len(want.containers))
						if got := milli(t, r[2]); !closeCPU(got, want.milliCPU*n) {
							return fmt.Errorf("%s/%s CPU %dm, want %dm within 5%%", r[0], r[1], got, want.milliCPU*n)
						}
						if got := mi(t, r[3]); got != want.memoryMi*n {
							return fmt.Errorf("%s/%s memory %dMi, want %dMi", r[0], r[1], got, want.memoryMi*n)
						}
					}
					if seen != len(pods) {
						return fmt.Errorf("saw %d of our %d pods", seen, len(pods))
					}
					return nil
				}, "pod", "-A", proto)
			})
			t.Run("namespace and label", func(t *testing.T) {
				out := kubectlTop(t, atLeast(2), "pod", "-n", "e2e-top", "-l", "app=big", proto)
				_, rows := table(out)
				if len(rows) != 2 {
					t.Fatalf("want the 2 big pods:\n%s", out)
				}
				for _, r := range rows {
					if !strings.HasPrefix(r[0], "big-") {
						t.Errorf("row %v is not a big pod", r)
					}
				}
			})
			t.Run("containers", func(t *testing.T) {
				out := kubectlTop(t, atLeast(2), "pod", "-n", "e2e-other", "--containers", proto)
				header, rows := table(out)
				if header[0] != "POD" || header[1] != "NAME" {
					t.Fatalf("header %v", header)
				}
				var names []string
				for _, r := range rows {
					names = append(names, r[1])
					if got := milli(t, r[2]); !closeCPU(got, 100) {
						t.Errorf("container %s CPU %dm, want 100m", r[1], got)
					}
					if got := mi(t, r[3]); got != 40 {
						t.Errorf("container %s memory %dMi, want 40Mi", r[1], got)
					}
				}
				sort.Strings(names)
				if strings.Join(names, ",") != "main,sidecar" {
					t.Errorf("containers %v, want main and sidecar", names)
				}
			})
			t.Run("sort by cpu and memory, with sum", func(t *testing.T) {
				for _, by := range []string{"cpu", "memory"} {
					out := kubectlTop(t, atLeast(6), "pod", "-n", "e2e-top", "--sort-by="+by, "--sum", proto)
					_, rows := table(out)
					if len(rows) < 6 {
						t.Fatalf("want 4 pods, a rule and a sum:\n%s", out)
					}
					if !strings.HasPrefix(rows[0][0], "big-") || !strings.HasPrefix(rows[3][0], "small-") {
						t.Errorf("--sort-by=%s: big pods not first:\n%s", by, out)
					}
					sum := rows[len(rows)-1]
					if got := milli(t, sum[0]); !closeCPU(got, 700) {
						t.Errorf("--sum CPU %dm, want 700m:\n%s", got, out)
					}
					if got := mi(t, sum[1]); got != 352 {
						t.Errorf("--sum memory %dMi, want 352Mi:\n%s", got, out)
					}
				}
			})
		})
	}
}

func TestKubectlTopNodes(t *testing.T) {
	setupTop(t)
	ctx := context.Background()
	for _, proto := range []string{"--use-protocol-buffers=true", "--use-protocol-buffers=false"} {
		// Other tests' pods come and go: compare with what runs now, until
		// both agree.
		waitFor(t, 3*resolution+30*time.Second, func() error {
			want, err := nodeUsage(ctx)
			if err != nil {
				return err
			}
			out, err := cluster.Kubectl(ctx, "top", "node", proto)
			if err != nil {
				return err
			}
			_, rows := table(out)
			seen := 0
			for _, r := range rows {
				w, ok := want[r[0]]
				if !ok {
					continue
				}
				seen++
				if got := milli(t, r[1]); !closeCPU(got, w[0]) {
					return fmt.Errorf("%s: node %s CPU %dm, want %dm within 5%%", proto, r[0], got, w[0])
				}
				if got := mi(t, r[3]); got != w[1] {
					return fmt.Errorf("%s: node %s memory %dMi, want %dMi", proto, r[0], got, w[1])
				}
			}
			if seen != fleetNodes {
				return fmt.Errorf("%s: saw %d of %d nodes (both formats and the failing summary included):\n%s", proto, seen, fleetNodes, out)
			}
			return nil
		})
	}
}

// nodeUsage is what each fleet node should show: its own usage (its
// shape's, tens of GiB on the large nodes) plus the usage its running
// pods' annotations ask for.
func nodeUsage(ctx context.Context) (map[string][2]int64, error) {
	want := map[string][2]int64{}
	for _, name := range sim.NodeNames() {
		if shape, ok := sim.NodeShape(name); ok && name != hostNode {
			want[name] = [2]int64{shape.SystemMilliCPU, shape.SystemMemory >> 20}
		}
	}
	all, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range all.Items {
		w, ok := want[p.Spec.NodeName]
		if !ok || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		cpu, mem, err := fleet.ParseUsage(p.Annotations[fleet.UsageAnnotation])
		if err != nil {
			return nil, err
		}
		n := int64(len(p.Spec.Containers))
		want[p.Spec.NodeName] = [2]int64{w[0] + cpu*n, w[1] + mem*n>>20}
	}
	return want, nil
}

func TestTypedClientsReadBothVersions(t *testing.T) {
	pods := setupTop(t)
	mc := metricsClient(t)
	ctx := context.Background()
	waitFor(t, 3*resolution, func() error {
		v1, err := mc.MetricsV1().PodMetricses("e2e-top").List(ctx, metav1.ListOptions{LabelSelector: "app=small"})
		if err != nil {
			return err
		}
		b1, err := mc.MetricsV1beta1().PodMetricses("e2e-top").List(ctx, metav1.ListOptions{LabelSelector: "app=small"})
		if err != nil {
			return err
		}
		if len(v1.Items) != 2 || len(b1.Items) != 2 {
			return fmt.Errorf("v1 %d, v1beta1 %d small pods, want 2", len(v1.Items), len(b1.Items))
		}
		for i := range v1.Items {
			e := pods[v1.Items[i].Namespace+"/"+v1.Items[i].Name]
			if got := v1.Items[i].Containers[0].Usage.Cpu().MilliValue(); !closeCPU(got, e.milliCPU) {
				return fmt.Errorf("v1 %s CPU %dm, want %dm", v1.Items[i].Name, got, e.milliCPU)
			}
			if got := b1.Items[i].Containers[0].Usage.Memory().Value(); got != e.memoryMi<<20 {
				return fmt.Errorf("v1beta1 %s memory %d, want %d", b1.Items[i].Name, got, e.memoryMi<<20)
			}
			if w := v1.Items[i].Window.Duration; w < 5*time.Second || w > 3*resolution {
				return fmt.Errorf("window %v is not a sample interval", w)
			}
		}
		nodes, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{LabelSelector: "fleet.kubemetrics.io/simulated=true"})
		if err != nil {
			return err
		}
		if len(nodes.Items) != allNodes {
			return fmt.Errorf("v1beta1 lists %d fleet nodes, want %d", len(nodes.Items), allNodes)
		}
		return nil
	})
}

func TestBothKubeletFormats(t *testing.T) {
	setupTop(t)
	names := sim.NodeNames()
	// auto asks /metrics/resource first and falls back per node to the
	// summary, remembering the fallback.
	waitFor(t, 3*resolution, func() error {
		for _, i := range []int{2, 4} {
			if got := sim.Hits(names[i], "/stats/summary"); got < 2 {
				return fmt.Errorf("node %s: /stats/summary asked %d times", names[i], got)
			}
		}
		return nil
	})
	// A 404 (summary-only) and a 500 (resource-500) both fall back.
	for _, i := range []int{2, 4} {
		if got := sim.Hits(names[i], "/metrics/resource"); got != 1 {
			t.Errorf("node %s: /metrics/resource asked %d times, want once, then the fallback remembered", names[i], got)
		}
	}
	for _, i := range []int{0, 3} {
		if got := sim.Hits(names[i], "/stats/summary"); got != 0 {
			t.Errorf("node %s (/metrics/resource works): /stats/summary asked %d times, want 0", names[i], got)
		}
		if got := sim.Hits(names[i], "/metrics/resource"); got < 2 {
			t.Errorf("node %s: /metrics/resource asked %d times, want at least 2", names[i], got)
		}
	}
}

// TestHostNodeIsReal reads the node backed by this machine: kubectl top
// shows the working set cAdvisor measures and a CPU rate above zero.
func TestHostNodeIsReal(t *testing.T) {
	ctx := context.Background()
	waitFor(t, 3*resolution+30*time.Second, func() error {
		out, err := cluster.Kubectl(ctx, "top", "node", hostNode)
		if err != nil {
			return err
		}
		_, rows := table(out)
		if len(rows) != 1 {
			return fmt.Errorf("want one row:\n%s", out)
		}
		_, real, _, err := host.Read()
		if err != nil {
			return err
		}
		cpu, mem := milli(t, rows[0][1]), mi(t, rows[0][3])
		realMi := int64(real >> 20)
		if cpu <= 0 {
			return fmt.Errorf("host CPU %dm: this process alone uses more", cpu)
		}
		if d := mem - realMi; d*10 > realMi || -d*10 > realMi {
			return fmt.Errorf("host memory %dMi, cAdvisor reads %dMi now", mem, realMi)
		}
		return nil
	})
	// Its capacity is this machine's, so kubectl's percentages are true.
	cores, memory, err := host.Machine()
	if err != nil {
		t.Fatal(err)
	}
	node, err := client.CoreV1().Nodes().Get(ctx, hostNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := node.Status.Capacity; c.Cpu().Value() != int64(cores) || c.Memory().Value() != int64(memory) {
		t.Errorf("host node capacity %v CPU, %v memory; this machine has %d cores and %d bytes", c.Cpu(), c.Memory(), cores, memory)
	}
}
