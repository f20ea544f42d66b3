package e2eswap

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The kubelet endpoints the server is run with, each in its own case.
var endpoints = []string{"resource", "summary"}

// startServer runs our server with the kubelet endpoint and the extra
// flags, until the test ends.
func startServer(t *testing.T, endpoint string, extra ...string) {
	t.Helper()
	args := append([]string{"--metric-resolution=" + resolution.String(), "--kubelet-request-timeout=" + timeout.String(),
		"--kubelet-endpoint=" + endpoint, "-v=2"}, extra...)
	if _, _, err := e.suite.StartMetricsServer(context.Background(), args...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.suite.Cluster.StopMetricsServer)
}

// usage is what the API serves of one node or container: each usage key
// present, as its quantity's value.
type usage map[corev1.ResourceName]int64

func usageOf(l corev1.ResourceList) usage {
	u := usage{}
	for k, q := range l {
		u[k] = q.Value()
	}
	return u
}

// served reads every node's and every pod's usage through the
// kube-apiserver (kubectl get --raw, v1beta1 as the HPA reads it): by
// node name, and by pod name's container.
func served(ctx context.Context) (nodes map[string]usage, containers map[string]usage, err error) {
	raw, err := e.suite.Cluster.Kubectl(ctx, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
	if err != nil {
		return nil, nil, err
	}
	var nl metricsv1beta1.NodeMetricsList
	if err := json.Unmarshal([]byte(raw), &nl); err != nil {
		return nil, nil, err
	}
	nodes = map[string]usage{}
	for _, n := range nl.Items {
		nodes[n.Name] = usageOf(n.Usage)
	}
	raw, err = e.suite.Cluster.Kubectl(ctx, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/"+namespace+"/pods")
	if err != nil {
		return nil, nil, err
	}
	var pl metricsv1beta1.PodMetricsList
	if err := json.Unmarshal([]byte(raw), &pl); err != nil {
		return nil, nil, err
	}
	containers = map[string]usage{}
	for _, p := range pl.Items {
		for _, c := range p.Containers {
			containers[p.Name+"/"+c.Name] = usageOf(c.Usage)
		}
	}
	return nodes, containers, nil
}

// waitServed polls served until every node and pod is there and check
// passes.
func waitServed(t *testing.T, check func(nodes, containers map[string]usage) error) (nodes, containers map[string]usage) {
	t.Helper()
	ctx := context.Background()
	err := localcluster.Poll(ctx, "the metrics served", time.Second, 3*resolution+30*time.Second, func() error {
		var err error
		if nodes, containers, err = served(ctx); err != nil {
			return err
		}
		if len(nodes) != len(e.nodeNames) || len(containers) != 2*len(e.nodeNames) {
			return fmt.Errorf("%d nodes and %d containers served, want %d and %d", len(nodes), len(containers), len(e.nodeNames), 2*len(e.nodeNames))
		}
		return check(nodes, containers)
	})
	if err != nil {
		t.Fatal(err)
	}
	return nodes, containers
}

// want is what a node or container must serve of swap and ephemeral
// storage; absent is -1.
type want struct{ swap, eph int64 }

func (w want) check(what string, u usage) error {
	for _, x := range []struct {
		key  corev1.ResourceName
		want int64
	}{{"swap", w.swap}, {corev1.ResourceEphemeralStorage, w.eph}} {
		got, ok := u[x.key]
		switch {
		case x.want < 0 && ok:
			return fmt.Errorf("%s serves %s %d, want it absent", what, x.key, got)
		case x.want >= 0 && !ok:
			return fmt.Errorf("%s serves no %s, want %d", what, x.key, x.want)
		case ok && got != x.want:
			return fmt.Errorf("%s serves %s %d, want %d", what, x.key, got, x.want)
		}
	}
	if _, ok := u[corev1.ResourceCPU]; !ok {
		return fmt.Errorf("%s serves no cpu", what)
	}
	if _, ok := u[corev1.ResourceMemory]; !ok {
		return fmt.Errorf("%s serves no memory", what)
	}
	return nil
}

// swapOf is what each node and container serves of swap: the node with
// swap its system's and its big container's, the node without 0 (its
// kubelet reports 0), the kubelet without swap stats none.
func swapOf(i int, container string) int64 {
	switch {
	case i == noStatsNode:
		return -1
	case i == swapNode && container == "big":
		return bigSwap
	case i == swapNode && container == "":
		return systemSwap + bigSwap
	}
	return 0
}

// checkAll checks every node and container against swapOf and, with eph,
// the ephemeral storage the fleet reports (without, none).
func checkAll(eph bool) func(nodes, containers map[string]usage) error {
	return func(nodes, containers map[string]usage) error {
		for i, name := range e.nodeNames {
			nodeEph := int64(-1)
			if eph {
				// The node's root filesystem: what the system uses and
				// the pods' ephemeral storage, their token volumes
				// included.
				shape, _ := e.fleet.NodeShape(name)
				system := shape.SystemDisk
				if shape.Disk == 0 {
					system = 20 << 30 // fleet.DefaultDisk's
				}
				nodeEph = system + bigEph + smallEph + 2*(12<<10)
			}
			if err := (want{swapOf(i, ""), nodeEph}).check("node "+name, nodes[name]); err != nil {
				return err
			}
			for _, c := range []struct {
				name string
				eph  int64
			}{{"big", bigEph}, {"small", smallEph}} {
				if !eph {
					c.eph = -1
				}
				key := fmt.Sprintf("%s-%d/%s", c.name, i, c.name)
				if err := (want{swapOf(i, c.name), c.eph}).check("container "+key, containers[key]); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// topRows runs kubectl top and returns its header and rows by name.
func topRows(t *testing.T, args ...string) (header []string, rows map[string][]string) {
	t.Helper()
	out, err := e.suite.Cluster.Kubectl(context.Background(), append([]string{"top"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	rows = map[string][]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 {
			header = f
			continue
		}
		rows[f[0]] = f
	}
	return header, rows
}

// TestShowSwap: kubectl 1.37's top pod and top node --show-swap show the
// swap each kubelet reports, through the kube-apiserver, on each kubelet
// endpoint; the API serves it where reported (0 where the kubelet says 0)
// and leaves it out where the kubelet reports none; without --show-swap
// kubectl shows the columns it always showed.
func TestShowSwap(t *testing.T) {
	for _, ep := range endpoints {
		t.Run(ep, func(t *testing.T) {
			startServer(t, ep)
			waitServed(t, checkAll(false))

			header, rows := topRows(t, "pod", "-n", namespace, "--show-swap")
			if got := strings.Join(header, " "); got != "NAME CPU(cores) MEMORY(bytes) SWAP(bytes)" {
				t.Fatalf("top pod --show-swap header %q", got)
			}
			for i := range e.nodeNames {
				for _, c := range []string{"big", "small"} {
					pod := fmt.Sprintf("%s-%d", c, i)
					// kubectl prints a missing key as 0Mi.
					want := fmt.Sprintf("%dMi", max(swapOf(i, c), 0)>>20)
					if r := rows[pod]; len(r) != 4 || r[3] != want {
						t.Errorf("top pod %s: %v, want SWAP(bytes) %s", pod, r, want)
					}
				}
			}
			header, rows = topRows(t, "node", "--show-swap")
			if got := strings.Join(header, " "); got != "NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%) SWAP(bytes) SWAP(%)" {
				t.Fatalf("top node --show-swap header %q", got)
			}
			wantNode := map[int][2]string{
				// SWAP(%) against status.nodeInfo.swap.capacity, truncated.
				swapNode: {fmt.Sprintf("%dMi", (systemSwap+bigSwap)>>20), fmt.Sprintf("%d%%", (systemSwap+bigSwap)*100/swapCapacity)},
				// A node without swap capacity is "unknown" to kubectl.
				noSwapNode:  {"<unknown>", "<unknown>"},
				noStatsNode: {"<unknown>", "<unknown>"},
			}
			for i, name := range e.nodeNames {
				r := rows[name]
				if len(r) != 7 || r[5] != wantNode[i][0] || r[6] != wantNode[i][1] {
					t.Errorf("top node %s: %v, want SWAP(bytes) %s SWAP(%%) %s", name, r, wantNode[i][0], wantNode[i][1])
				}
			}

			// Without --show-swap: the columns of before.
			header, rows = topRows(t, "pod", "-n", namespace)
			if got := strings.Join(header, " "); got != "NAME CPU(cores) MEMORY(bytes)" || len(rows["big-0"]) != 3 || rows["big-0"][2] != "300Mi" {
				t.Errorf("top pod: header %q, big-0 %v; want NAME CPU(cores) MEMORY(bytes), 300Mi", got, rows["big-0"])
			}
			header, _ = topRows(t, "node")
			if got := strings.Join(header, " "); got != "NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)" {
				t.Errorf("top node header %q", got)
			}
		})
	}
}

// TestEphemeralStorage: with --kubelet-ephemeral-storage the API serves
// each container's ephemeral storage (its writable layer plus its logs,
// from the full summary) and each node's root filesystem in use, on each
// kubelet endpoint; on /metrics/resource at the cost of a summary request
// a node a cycle, which without the flag is never made. kubectl top
// shows what it showed.
func TestEphemeralStorage(t *testing.T) {
	for _, ep := range endpoints {
		t.Run(ep, func(t *testing.T) {
			summaries := func() int {
				n := 0
				for _, name := range e.nodeNames {
					n += e.fleet.Hits(name, "/stats/summary")
				}
				return n
			}
			if ep == "resource" {
				// Without the flag, no summary is asked for.
				before := summaries()
				startServer(t, ep)
				waitServed(t, checkAll(false))
				if got := summaries() - before; got != 0 {
					t.Errorf("without the flag, %d summary requests on --kubelet-endpoint=resource, want 0", got)
				}
				e.suite.Cluster.StopMetricsServer()
			}
			before := summaries()
			startServer(t, ep, "--kubelet-ephemeral-storage")
			waitServed(t, checkAll(true))
			if got := summaries() - before; got < len(e.nodeNames) {
				t.Errorf("%d summary requests with the flag, want one a node a cycle (at least %d)", got, len(e.nodeNames))
			}
			header, rows := topRows(t, "pod", "-n", namespace)
			if got := strings.Join(header, " "); got != "NAME CPU(cores) MEMORY(bytes)" || len(rows["small-1"]) != 3 || rows["small-1"][2] != "40Mi" {
				t.Errorf("top pod: header %q, small-1 %v; want NAME CPU(cores) MEMORY(bytes), 40Mi", got, rows["small-1"])
			}
			// On the wire: the usage map's keys in order, as the codecs
			// sort them.
			raw, err := e.suite.Cluster.Kubectl(context.Background(), "get", "--raw", "/apis/metrics.k8s.io/v1/namespaces/"+namespace+"/pods/big-0")
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`"usage":\{"cpu":"[0-9]+[num]?","ephemeral-storage":"100Mi","memory":"300Mi","swap":"256Mi"\}`).MatchString(raw) {
				t.Errorf("big-0 on the wire: %s", raw)
			}
		})
	}
}
