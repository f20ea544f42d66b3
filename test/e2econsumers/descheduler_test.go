package e2econsumers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The descheduler test's load, per container (the fleet's load model), on
// 8-core 32 GiB nodes with 150m and 512 MiB in use outside pods:
// busyNode runs hogReplicas pods of a ReplicaSet at hogUsage (about 62 %
// of its CPU and 64 % of its memory), middleNode one pod at middleUsage
// (about 33 %), idleNode one at idleUsage (about 3 %). With thresholds of
// 20 % and targets of 50 %, LowNodeUtilization finds busyNode
// overutilized and idleNode (and vpaNode, a few percent) underutilized,
// and evicts from busyNode until it is under 50 %: one hog pod, as 3 hogs
// are 47 % of its CPU and 48 % of its memory.
const (
	deschedulerNamespace = "desched"
	hogUsage             = "cpu=1200m,memory=5Gi,swap=64Mi,ephemeral-storage=100Mi"
	hogReplicas          = 4
	middleUsage          = "cpu=2500m,memory=10Gi"
	idleUsage            = "cpu=100m,memory=1Gi"
	wantEvictions        = 1
)

// deschedulerPolicy is LowNodeUtilization on actual usage from the
// metrics API (descheduler v0.36's v1alpha2 policy: metricsProviders
// turns its metrics collector on, metricsUtilization.source makes the
// plugin use it).
const deschedulerPolicy = `apiVersion: descheduler/v1alpha2
kind: DeschedulerPolicy
metricsProviders:
- source: KubernetesMetrics
profiles:
- name: consumers
  pluginConfig:
  - name: DefaultEvictor
    args: {}
  - name: LowNodeUtilization
    args:
      thresholds:
        cpu: 20
        memory: 20
      targetThresholds:
        cpu: 50
        memory: 50
      metricsUtilization:
        source: KubernetesMetrics
      evictableNamespaces:
        exclude: [kube-system]
  plugins:
    balance:
      enabled: [LowNodeUtilization]
`

// classified is what the descheduler logged of one node: its category
// ("overutilized", "underutilized" or "appropriately utilized") and the
// usage it computed, CPU in millicores and memory in bytes, with the
// percentages of the node's allocatable.
type classified struct {
	category           string
	usage              usage
	cpuPercent, memPct float64
}

// classification matches the descheduler's lines (klog text) "Node has been
// classified" and "Node is appropriately utilized", as logged by
// pkg/framework/plugins/nodeutilization/lownodeutilization.go v0.36.0:
//
//	"Node has been classified" ... category="overutilized" node="cns-00000" usage={"cpu":"4950m","memory":"20992Mi","pods":"4"} usagePercentage={"cpu":62,"memory":64,"pods":4}
var classification = regexp.MustCompile(`"Node (?:has been classified|is appropriately utilized)".*?(?:category="([a-z]+)" )?node="([^"]+)" usage=(\{[^}]*\}) usagePercentage=(\{[^}]*\})`)

// parseClassification reads each node's classification from a descheduler
// log.
func parseClassification(log string) (map[string]classified, error) {
	out := map[string]classified{}
	for _, m := range classification.FindAllStringSubmatch(log, -1) {
		c := classified{category: m[1]}
		if c.category == "" {
			c.category = "appropriately utilized"
		}
		var u map[string]resource.Quantity
		if err := json.Unmarshal([]byte(m[3]), &u); err != nil {
			return nil, fmt.Errorf("node %s usage %s: %w", m[2], m[3], err)
		}
		cpu, mem := u["cpu"], u["memory"]
		c.usage = usage{milliCPU: cpu.MilliValue(), memory: mem.Value()}
		var p map[string]float64
		if err := json.Unmarshal([]byte(m[4]), &p); err != nil {
			return nil, fmt.Errorf("node %s usage percentages %s: %w", m[2], m[4], err)
		}
		c.cpuPercent, c.memPct = p["cpu"], p["memory"]
		out[m[2]] = c
	}
	return out, nil
}

// TestDeschedulerLowNodeUtilization: the descheduler v0.36.0, with its
// project's RBAC, running once as its ServiceAccount with
// LowNodeUtilization on the metrics API, reads every node's NodeMetrics
// from our server (its collector GETs each node every 5 s) and classifies
// the nodes by them: its usage of each node is what we serve, busyNode is
// overutilized, idleNode underutilized, middleNode appropriately
// utilized; then it reads the PodMetrics of busyNode's pods (a container
// without cpu or memory would fail it) and evicts one hog, which brings
// busyNode under its target by the usage we serve of that pod. busyNode
// and the hogs are served with swap and ephemeral-storage beside cpu and
// memory, which it passes over.
func TestDeschedulerLowNodeUtilization(t *testing.T) {
	ctx := context.Background()
	c := e.suite.Client
	dir, err := moduleDir(ctx, "descheduler", deschedulerModule, deschedulerVersion)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyFile(ctx, filepath.Join(dir, "kubernetes/base/rbac.yaml"), "kube-system"); err != nil {
		t.Fatal(err)
	}
	if err := createNamespace(ctx, deschedulerNamespace); err != nil {
		t.Fatal(err)
	}

	// The hogs: a ReplicaSet (the default evictor evicts only pods with
	// an owner) pinned to busyNode.
	replicas := int32(hogReplicas)
	labels := map[string]string{"app": "hog"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: deschedulerNamespace},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: hogUsage}},
				Spec: corev1.PodSpec{NodeName: e.nodeNames[busyNode],
					Containers: []corev1.Container{{Name: "hog", Image: "registry.invalid/hog:1"}}},
			},
		},
	}
	if _, err := c.AppsV1().ReplicaSets(deschedulerNamespace).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name, usage string
		node        int
	}{{"middle", middleUsage, middleNode}, {"idle", idleUsage, idleNode}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: deschedulerNamespace,
				Annotations: map[string]string{fleet.UsageAnnotation: p.usage}},
			Spec: corev1.PodSpec{NodeName: e.nodeNames[p.node],
				Containers: []corev1.Container{{Name: p.name, Image: "registry.invalid/" + p.name + ":1"}}},
		}
		if _, err := c.CoreV1().Pods(deschedulerNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitRunning(ctx, deschedulerNamespace, hogReplicas+2); err != nil {
		t.Fatal(err)
	}
	hogs, err := podNames(ctx, "app=hog")
	if err != nil {
		t.Fatal(err)
	}
	// Our server serves a pod once it has two samples of it.
	var servedHogs map[string]usage
	if err := localcluster.Poll(ctx, "the hogs' metrics", time.Second, 3*resolution+30*time.Second, func() error {
		served, err := servedContainers(ctx, deschedulerNamespace, "hog")
		if err != nil {
			return err
		}
		servedHogs = served
		if len(served) != hogReplicas {
			return fmt.Errorf("%d of %d hogs served", len(served), hogReplicas)
		}
		for pod, u := range served {
			if !slices.Equal(u.keys, allKeys) {
				return fmt.Errorf("hog %s: we serve %v, want %v", pod, u.keys, allKeys)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The load the fleet reports of each node, before any eviction; and
	// our server serving it: a node's CPU is a rate over the window
	// between two scrapes, which is lower while a pod started within it.
	var reported [nodes]usage
	if err := localcluster.Poll(ctx, "the nodes' steady usage served", time.Second, 3*resolution+30*time.Second, func() error {
		for i, name := range e.nodeNames {
			if reported[i], err = fleetNode(ctx, name); err != nil {
				return err
			}
			served, err := servedNode(ctx, name)
			if err != nil {
				return err
			}
			if !near(served.milliCPU, reported[i].milliCPU) || served.memory != reported[i].memory {
				return fmt.Errorf("node %s: we serve cpu %dm memory %d, the fleet reports cpu %dm memory %d",
					name, served.milliCPU, served.memory, reported[i].milliCPU, reported[i].memory)
			}
			if i == busyNode && !slices.Equal(served.keys, allKeys) {
				return fmt.Errorf("node %s: we serve %v, want %v", name, served.keys, allKeys)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	policy := filepath.Join(e.suite.Dir, "descheduler-policy.yaml")
	if err := os.WriteFile(policy, []byte(deschedulerPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := serviceAccountKubeconfig(ctx, "kube-system", "descheduler-sa")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// No --descheduling-interval: one descheduling run, then it exits.
	out, err := runOnce(ctx, "descheduler", 3*time.Minute, e.descheduler,
		"--kubeconfig="+kubeconfig,
		"--policy-config-file="+policy,
		"--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--cert-dir="+filepath.Join(e.suite.Dir, "descheduler-certs"),
		"--v=3")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	logf("descheduler ran once in %v", time.Since(began).Round(time.Second))

	got, err := parseClassification(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{busyNode: "overutilized", idleNode: "underutilized", middleNode: "appropriately utilized", vpaNode: "underutilized"}
	for i, category := range want {
		name := e.nodeNames[i]
		g, ok := got[name]
		if !ok {
			t.Errorf("the descheduler logged no classification of node %s", name)
			continue
		}
		served, err := servedNode(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		logf("descheduler: node %s %s, usage cpu %dm memory %d (%.0f%%, %.0f%% of allocatable); we serve cpu %dm memory %d (keys %v); the fleet reports cpu %dm memory %d",
			name, g.category, g.usage.milliCPU, g.usage.memory, g.cpuPercent, g.memPct, served.milliCPU, served.memory, served.keys, reported[i].milliCPU, reported[i].memory)
		if !near(g.usage.milliCPU, reported[i].milliCPU) || g.usage.memory != reported[i].memory {
			t.Errorf("node %s: the descheduler's usage cpu %dm memory %d; the fleet reports cpu %dm memory %d",
				name, g.usage.milliCPU, g.usage.memory, reported[i].milliCPU, reported[i].memory)
		}
		if g.category != category {
			t.Errorf("node %s: the descheduler classified it %s, want %s", name, g.category, category)
		}
		// Its usage is a moving average of what we served every 5 s (here
		// one GET, as it runs once) of a steady load: the same, up to the
		// CPU rate's jitter between its GET and ours.
		if !near(g.usage.milliCPU, served.milliCPU) {
			t.Errorf("node %s: the descheduler's cpu %dm, we serve %dm", name, g.usage.milliCPU, served.milliCPU)
		}
		if g.usage.memory != served.memory {
			t.Errorf("node %s: the descheduler's memory %d, we serve %d", name, g.usage.memory, served.memory)
		}
		alloc := node.Status.Allocatable
		cpuPct := 100 * float64(g.usage.milliCPU) / float64(alloc.Cpu().MilliValue())
		memPct := 100 * float64(g.usage.memory) / float64(alloc.Memory().Value())
		// It logs them rounded to whole percents.
		if math.Round(cpuPct) != g.cpuPercent || math.Round(memPct) != g.memPct {
			t.Errorf("node %s: the descheduler's percentages %.0f%% cpu, %.0f%% memory; its usage over allocatable is %.2f%%, %.2f%%",
				name, g.cpuPercent, g.memPct, cpuPct, memPct)
		}
	}

	if t.Failed() {
		t.Logf("the descheduler's log:\n%s", out)
	}
	evicted := regexp.MustCompile(`"Evicted pod".*pod="`+deschedulerNamespace+`/(hog-[a-z0-9]+)"`).FindAllStringSubmatch(out, -1)
	if len(evicted) != wantEvictions {
		t.Errorf("the descheduler evicted %d pods, want %d (one hog brings %s under 50%%); its log:\n%s",
			len(evicted), wantEvictions, e.nodeNames[busyNode], out)
	} else {
		logf("descheduler: evicted %s from %s", evicted[0][1], e.nodeNames[busyNode])
	}
	for _, m := range evicted {
		if _, ok := hogs[m[1]]; !ok {
			t.Errorf("the descheduler evicted %s, not one of the hogs %v", m[1], hogs)
		}
	}
	// After an eviction it takes the pod's usage, from the PodMetrics we
	// serve, off the node's.
	updated := regexp.MustCompile(`"Updated node usage" node="([^"]+)" CPU=(\d+) Mem=(\d+)`).FindAllStringSubmatch(out, -1)
	if len(evicted) == 1 && len(updated) == 1 {
		busy, pod := got[e.nodeNames[busyNode]], servedHogs[evicted[0][1]]
		cpu, _ := strconv.ParseInt(updated[0][2], 10, 64)
		mem, _ := strconv.ParseInt(updated[0][3], 10, 64)
		logf("descheduler: %s's usage after evicting %s: cpu %dm memory %d; we served the pod cpu %dm memory %d",
			updated[0][1], evicted[0][1], cpu, mem, pod.milliCPU, pod.memory)
		if want := busy.usage.milliCPU - pod.milliCPU; !near(cpu, want) {
			t.Errorf("the descheduler's cpu of %s after the eviction %dm, want %dm - %dm = %dm", updated[0][1], cpu, busy.usage.milliCPU, pod.milliCPU, want)
		}
		if want := busy.usage.memory - pod.memory; mem != want {
			t.Errorf("the descheduler's memory of %s after the eviction %d, want %d - %d = %d", updated[0][1], mem, busy.usage.memory, pod.memory, want)
		}
	} else {
		t.Errorf("the descheduler logged %d node usage updates, want 1, after %d evictions", len(updated), len(evicted))
	}
	// The eviction went through the API: the hog is gone, replaced.
	if err := localcluster.Poll(ctx, "the evicted hog gone", time.Second, time.Minute, func() error {
		now, err := podNames(ctx, "app=hog")
		if err != nil {
			return err
		}
		gone := 0
		for name := range hogs {
			if _, ok := now[name]; !ok {
				gone++
			}
		}
		if gone != wantEvictions {
			return fmt.Errorf("%d of the hogs %v gone, want %d (now %v)", gone, hogs, wantEvictions, now)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// podNames names the live pods of the descheduler's namespace that match
// selector.
func podNames(ctx context.Context, selector string) (map[string]bool, error) {
	list, err := e.suite.Client.CoreV1().Pods(deschedulerNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Name] = true
		}
	}
	return out, nil
}
