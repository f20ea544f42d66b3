package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// Result is one binary's figures.
type Result struct {
	Name                           string
	CPUSecondsPerMinute            float64
	MilliCoresPerNode              float64
	RSSSteadyMiB, RSSPeakMiB       float64
	KiBPerNode                     float64
	FirstFullListSeconds           float64
	ListPodsProto, ListPodsJSON    Latency
	ListNodesProto                 Latency
	KubeletRequestsPerNodePerCycle float64
	KubeletRequestsMinMaxPerNode   [2]int
}

// Latency summarises request durations in milliseconds.
type Latency struct{ P50, P99 float64 }

const clockTicks = 100 // USER_HZ on Linux

func measure(ctx context.Context, c *localcluster.Cluster, fl *fleet.Fleet, name, binary, manifests string, nodes, pods int, res, steady time.Duration, logf func(string, ...any)) (Result, error) {
	r := Result{Name: name}
	logf("%s: starting %s", name, binary)
	began := time.Now()
	if _, err := c.StartMetricsServer(ctx, localcluster.MetricsServer{Binary: binary, Manifests: manifests, Args: []string{"--metric-resolution=" + res.String()}}); err != nil {
		return r, err
	}
	pid := c.MetricsServerPID()
	proto, err := metricsClient(c, "application/vnd.kubernetes.protobuf")
	if err != nil {
		return r, err
	}
	jsonc, err := metricsClient(c, "application/json")
	if err != nil {
		return r, err
	}
	// Time to the first complete node and pod list.
	for {
		if time.Since(began) > 3*res+time.Minute {
			return r, fmt.Errorf("no complete list %v after start", time.Since(began).Round(time.Second))
		}
		nl, err1 := proto.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
		pl, err2 := proto.MetricsV1beta1().PodMetricses("").List(ctx, metav1.ListOptions{LabelSelector: "bench=fleet"})
		if err1 == nil && err2 == nil && len(nl.Items) >= nodes && len(pl.Items) >= pods {
			r.FirstFullListSeconds = time.Since(began).Seconds()
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf("%s: first complete list after %.1fs", name, r.FirstFullListSeconds)

	// Steady state: CPU and RSS over the window, kubelet requests.
	cpu0, err := cpuTicks(pid)
	if err != nil {
		return r, err
	}
	hits0, _, _ := fl.TotalHits()
	t0 := time.Now()
	var rss []float64
	for time.Since(t0) < steady {
		if v, err := rssMiB(pid); err == nil {
			rss = append(rss, v)
		}
		time.Sleep(time.Second)
	}
	cpu1, err := cpuTicks(pid)
	if err != nil {
		return r, err
	}
	hits1, _, _ := fl.TotalHits()
	elapsed := time.Since(t0)
	r.CPUSecondsPerMinute = float64(cpu1-cpu0) / clockTicks / elapsed.Minutes()
	r.MilliCoresPerNode = r.CPUSecondsPerMinute / 60 * 1000 / float64(nodes)
	sort.Float64s(rss)
	r.RSSPeakMiB = rss[len(rss)-1]
	r.RSSSteadyMiB = rss[len(rss)/2]
	r.KiBPerNode = r.RSSSteadyMiB * 1024 / float64(nodes)
	cycles := elapsed.Seconds() / res.Seconds()
	r.KubeletRequestsPerNodePerCycle = float64(hits1-hits0) / float64(nodes) / cycles

	// LIST latency while the server also scrapes.
	r.ListPodsProto = timeIt(20, func() error {
		_, err := proto.MetricsV1beta1().PodMetricses("").List(ctx, metav1.ListOptions{})
		return err
	})
	r.ListPodsJSON = timeIt(20, func() error {
		_, err := jsonc.MetricsV1beta1().PodMetricses("").List(ctx, metav1.ListOptions{})
		return err
	})
	r.ListNodesProto = timeIt(20, func() error {
		_, err := proto.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
		return err
	})
	logf("%s: %.2f CPU s/min, RSS %.0f MiB, LIST pods p50 %.0f ms", name, r.CPUSecondsPerMinute, r.RSSSteadyMiB, r.ListPodsProto.P50)
	return r, nil
}

func metricsClient(c *localcluster.Cluster, ct string) (*metricsclient.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.ContentConfig = rest.ContentConfig{ContentType: ct, AcceptContentTypes: ct}
	cfg.QPS, cfg.Burst = 100, 100
	cfg.Timeout = time.Minute
	return metricsclient.NewForConfig(cfg)
}

// timeIt runs fn n times and returns p50 and p99 in milliseconds; failed
// calls count as the time they took.
func timeIt(n int, fn func() error) Latency {
	ds := make([]float64, 0, n)
	for range n {
		t := time.Now()
		_ = fn()
		ds = append(ds, float64(time.Since(t).Microseconds())/1000)
	}
	sort.Float64s(ds)
	return Latency{P50: ds[len(ds)/2], P99: ds[(len(ds)*99)/100]}
}

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return u + st, nil
}

// rssMiB is a process's resident set.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// createPods binds pods straight to nodes (no scheduler), in parallel.
func createPods(ctx context.Context, client kubernetes.Interface, nodes []string, perNode, containers int) error {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for ni, node := range nodes {
		if strings.HasSuffix(node, "-host") {
			continue
		}
		for p := range perNode {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				var cs []corev1.Container
				for c := range containers {
					cs = append(cs, corev1.Container{Name: fmt.Sprintf("c%d", c), Image: "registry.invalid/bench:1"})
				}
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d-%02d", ni, p), Namespace: "default", Labels: map[string]string{"bench": "fleet"},
						Annotations: map[string]string{fleet.UsageAnnotation: "cpu=50m,memory=64Mi"}},
					Spec: corev1.PodSpec{NodeName: node, Containers: cs},
				}
				if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return first
}

func waitPodsRunning(ctx context.Context, client kubernetes.Interface, want int, logf func(string, ...any)) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=fleet", FieldSelector: "status.phase=Running"})
		if err == nil && len(list.Items) >= want {
			logf("%d pods running", len(list.Items))
			return nil
		}
		time.Sleep(2 * time.Second)
	}
	return fmt.Errorf("fewer than %d pods running after 10 minutes", want)
}
