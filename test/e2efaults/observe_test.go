package e2efaults

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// sample is one node's or pod's metrics as a reader got them.
type sample struct {
	milliCPU int64
	memory   int64 // bytes
	ts       time.Time
}

// apiSnapshot is one NodeMetrics list and one PodMetrics list of the
// namespace, read with the typed client (v1beta1, protobuf, as the HPA
// reads).
type apiSnapshot struct {
	at          time.Time // when both answers were in
	nodes, pods map[string]sample
	err         error
}

// topRow is one row of kubectl top; unknown when kubectl printed
// <unknown> (a node it lists without metrics).
type topRow struct {
	milliCPU, memoryMi int64
	unknown            bool
}

// topSnapshot is `kubectl top node` and `kubectl top pod -n faults` (v1).
type topSnapshot struct {
	at          time.Time
	nodes, pods map[string]topRow
	out         string
	err         error
}

// hpaSample is the web HPA's status.
type hpaSample struct {
	at          time.Time
	active      bool  // condition ScalingActive is True
	utilization int32 // current average CPU utilization; -1 when absent
	why         string
}

// observer reads what users read, on its own schedule, for the scenarios
// to judge afterwards: the typed API every 3 s, kubectl top every 8 s and
// the HPA every 5 s.
type observer struct {
	e  *env
	mu sync.Mutex
	// Guarded by mu.
	api []apiSnapshot
	top []topSnapshot
	hpa []hpaSample
}

func (o *observer) run(ctx context.Context) {
	every := func(d time.Duration, fn func()) {
		go func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				fn()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	every(3*time.Second, func() {
		s := o.e.readAPI(ctx)
		o.mu.Lock()
		o.api = append(o.api, s)
		o.mu.Unlock()
	})
	every(8*time.Second, func() {
		s := o.e.readTop(ctx)
		o.mu.Lock()
		o.top = append(o.top, s)
		o.mu.Unlock()
	})
	every(5*time.Second, func() {
		s := o.e.readHPA(ctx)
		o.mu.Lock()
		o.hpa = append(o.hpa, s)
		o.mu.Unlock()
	})
}

// between returns the snapshots taken in [from, to).
func (o *observer) between(from, to time.Time) (api []apiSnapshot, top []topSnapshot, hpa []hpaSample) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.api {
		if !s.at.Before(from) && s.at.Before(to) {
			api = append(api, s)
		}
	}
	for _, s := range o.top {
		if !s.at.Before(from) && s.at.Before(to) {
			top = append(top, s)
		}
	}
	for _, s := range o.hpa {
		if !s.at.Before(from) && s.at.Before(to) {
			hpa = append(hpa, s)
		}
	}
	return api, top, hpa
}

func (e *env) readAPI(ctx context.Context) apiSnapshot {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := apiSnapshot{nodes: map[string]sample{}, pods: map[string]sample{}}
	nodes, err := e.metrics.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.at, s.err = time.Now(), err
		return s
	}
	for _, n := range nodes.Items {
		s.nodes[n.Name] = sample{milliCPU: n.Usage.Cpu().MilliValue(), memory: n.Usage.Memory().Value(), ts: n.Timestamp.Time}
	}
	pods, err := e.metrics.MetricsV1beta1().PodMetricses(namespace).List(ctx, metav1.ListOptions{})
	s.at = time.Now()
	if err != nil {
		s.err = err
		return s
	}
	for _, p := range pods.Items {
		var sm sample
		for _, c := range p.Containers {
			sm.milliCPU += c.Usage.Cpu().MilliValue()
			sm.memory += c.Usage.Memory().Value()
		}
		sm.ts = p.Timestamp.Time
		s.pods[p.Name] = sm
	}
	return s
}

func (e *env) readTop(ctx context.Context) topSnapshot {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s := topSnapshot{nodes: map[string]topRow{}, pods: map[string]topRow{}}
	nodes, err := e.cluster.Kubectl(ctx, "top", "node")
	if err != nil {
		s.at, s.err, s.out = time.Now(), err, nodes
		return s
	}
	pods, err := e.cluster.Kubectl(ctx, "top", "pod", "-n", namespace)
	s.at, s.out = time.Now(), nodes+pods
	if err != nil {
		s.err = err
		return s
	}
	// NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%), and NAME CPU MEMORY.
	if s.nodes, err = topRows(nodes, 1, 3); err == nil {
		s.pods, err = topRows(pods, 1, 2)
	}
	s.err = err
	return s
}

// topRows parses kubectl top's table, the CPU and memory in the columns
// given.
func topRows(out string, cpuCol, memCol int) (map[string]topRow, error) {
	rows := map[string]topRow{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		if len(f) <= memCol {
			return nil, fmt.Errorf("kubectl top row %q has %d columns", line, len(f))
		}
		if f[cpuCol] == "<unknown>" {
			rows[f[0]] = topRow{unknown: true}
			continue
		}
		cpu, err := strconv.ParseInt(strings.TrimSuffix(f[cpuCol], "m"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("kubectl top row %q: cpu: %w", line, err)
		}
		mem, err := strconv.ParseInt(strings.TrimSuffix(f[memCol], "Mi"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("kubectl top row %q: memory: %w", line, err)
		}
		rows[f[0]] = topRow{milliCPU: cpu, memoryMi: mem}
	}
	return rows, nil
}

func (e *env) readHPA(ctx context.Context) hpaSample {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := hpaSample{utilization: -1}
	h, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, webName, metav1.GetOptions{})
	s.at = time.Now()
	if err != nil {
		s.why = err.Error()
		return s
	}
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			s.active = c.Status == corev1.ConditionTrue
			s.why = c.Reason + ": " + c.Message
		}
	}
	for _, m := range h.Status.CurrentMetrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			s.utilization = *m.Resource.Current.AverageUtilization
		}
	}
	return s
}

// failure is one series of metrics_server_kubelet_scrape_failures_total.
type failure struct {
	node, reason string
	count        float64
}

var failureLine = regexp.MustCompile(`^metrics_server_kubelet_scrape_failures_total\{node="([^"]*)",reason="([^"]*)"\} (\S+)$`)

// selfMetrics reads our server's /metrics as the admin: its whole text and
// the failure series by node.
func (e *env) selfMetrics(ctx context.Context) (string, map[string][]failure, error) {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(e.cluster.PKI.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		return "", nil, err
	}
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(e.cluster.PKI.Path(pki.Admin+".crt"), e.cluster.PKI.Path(pki.Admin+".key"))
	if err != nil {
		return "", nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(e.port)+"/metrics", nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	failures := map[string][]failure{}
	for _, line := range strings.Split(string(body), "\n") {
		m := failureLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return "", nil, fmt.Errorf("/metrics line %q: %w", line, err)
		}
		failures[m[1]] = append(failures[m[1]], failure{node: m[1], reason: m[2], count: v})
	}
	return string(body), failures, nil
}
