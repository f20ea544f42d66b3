package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// Result is one binary's figures at one fleet size.
type Result struct {
	Name                     string
	Nodes, Pods, Containers  int
	ResolutionSeconds        float64
	CPUSecondsPerMinute      float64
	MilliCoresPerNode        float64
	RSSSteadyMiB, RSSPeakMiB float64
	KiBPerNode               float64
	FirstFullListSeconds     float64
	// FirstFullListDirectSeconds asks the server itself, not the
	// kube-apiserver.
	FirstFullListDirectSeconds float64
	// Scrape cycles as the fleet saw them: from the first request of a
	// cycle to the last answer sent in it, and from its first request to
	// its last request (the spread).
	Cycles                         int
	CycleP50, CycleMax             float64
	SpreadP50                      float64
	KubeletRequestsPerNodePerCycle float64
	KubeletRequestsMinMaxPerNode   [2]int
	// List maps "pods|nodes / apiserver|direct / protobuf|json" to
	// latencies of listing every object of the kind.
	List map[string]Latency
	// APIServerPodListSeconds is how long the kube-apiserver alone took,
	// before any server ran, to list every running pod's metadata as a
	// pod informer does: the floor under FirstFullList at this size.
	APIServerPodListSeconds float64
	// APIServer is the kube-apiserver's work during the steady window:
	// its CPU and the requests it served.
	APIServer *APIServerLoad `json:",omitempty"`
	// APIServerIdle is the same over a window of the same length before
	// any server ran (the fleet registered, nothing scraping): what the
	// kube-apiserver spends on its own. The same in every result of a run.
	APIServerIdle *APIServerLoad `json:",omitempty"`
	// Consumer is a consumer's per-node pattern (the descheduler's) run
	// through the kube-apiserver after the LISTs.
	Consumer *ConsumerLoad `json:",omitempty"`
}

// Latency summarises request durations in milliseconds.
type Latency struct {
	N        int
	P50, P99 float64
	Errors   int
	// APIServerCPUMs is the kube-apiserver's CPU per call, milliseconds
	// (its utime+stime over the calls, divided by their number; the
	// kube-apiserver's background work included), for calls through it.
	APIServerCPUMs float64 `json:",omitempty"`
}

const clockTicks = 100 // USER_HZ on Linux

type measureConfig struct {
	// waitFor names the APIServices the binary serves (nil: both).
	waitFor                 []string
	name, binary, manifests string
	env                     []string
	args                    []string // extra server flags
	nodes, pods, containers int
	res, steady             time.Duration
	profileDir              string // when set, CPU and heap profiles of the server land here
	// probe measures the kube-apiserver in the steady window; nil skips it.
	probe *apiserverProbe
	// auditPolicy, when set, is given to the server with an audit log
	// in auditDir, which the probe reads.
	auditPolicy, auditDir string
	// apiserverProfileDir, when set, gets a 30 s CPU profile of the
	// kube-apiserver taken in the steady window.
	apiserverProfileDir string
	// consumerWindow, when set, runs the descheduler's pattern (a GET of
	// every node's NodeMetrics each consumerPeriod) for that long.
	consumerWindow, consumerPeriod time.Duration
	consumerWorkers                int
	logf                           func(string, ...any)
}

func measure(ctx context.Context, c *localcluster.Cluster, fl *fleet.Fleet, mc measureConfig) (Result, error) {
	r := Result{Name: mc.name, Nodes: mc.nodes, Pods: mc.pods, Containers: mc.containers, ResolutionSeconds: mc.res.Seconds(), List: map[string]Latency{}}
	logf := mc.logf
	logf("%s: starting %s", mc.name, mc.binary)
	// Time from the process's start to the first complete node and pod
	// list, straight from the server (polled from the start) and through
	// the kube-apiserver (which adds the aggregator's view of the
	// APIService's availability).
	var began time.Time
	// A check counts the items of the raw protobuf lists rather than
	// decoding 150,000 typed objects: the client's decoding took seconds
	// and, with the paced polls, blurred the figure by as much.
	complete := func(cl *metricsclient.Clientset) bool {
		count := func(kind, selector string) int {
			b, err := cl.MetricsV1beta1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1", kind).
				Param("labelSelector", selector).SetHeader("Accept", "application/vnd.kubernetes.protobuf").DoRaw(ctx)
			if err != nil {
				return -1
			}
			n, err := countListItems(b)
			if err != nil {
				return -1
			}
			return n
		}
		return count("nodes", "") >= mc.nodes && count("pods", "bench=fleet") >= mc.nodes*mc.pods
	}
	limit := 3*mc.res + 2*time.Minute
	direct := make(chan float64, 1)
	started := func(port int) {
		began = time.Now()
		cl, err := metricsClient(c, "direct", port, "protobuf")
		if err != nil {
			direct <- 0
			return
		}
		go func() {
			for time.Since(began) < limit && ctx.Err() == nil {
				t := time.Now()
				if complete(cl) {
					direct <- time.Since(began).Seconds()
					return
				}
				// A check lists every pod: at 300,000 pods polling
				// back to back would starve the scrapes it waits for.
				time.Sleep(max(100*time.Millisecond, time.Since(t)))
			}
			direct <- 0
		}()
	}
	args := []string{"--metric-resolution=" + mc.res.String()}
	var probe *apiserverProbe
	if mc.probe != nil {
		p := *mc.probe
		probe = &p
		if mc.auditPolicy != "" {
			probe.serverLog = filepath.Join(mc.auditDir, mc.name+".log")
			_ = os.Remove(probe.serverLog)
			args = append(args, "--audit-policy-file="+mc.auditPolicy, "--audit-log-path="+probe.serverLog)
		}
	}
	port, err := c.StartMetricsServer(ctx, localcluster.MetricsServer{Binary: mc.binary, Manifests: mc.manifests,
		Args: append(args, mc.args...), Env: mc.env, Started: started, WaitFor: mc.waitFor})
	if err != nil {
		return r, err
	}
	pid := c.MetricsServerPID()
	clients := map[string]*metricsclient.Clientset{}
	for _, route := range []string{"apiserver", "direct"} {
		for _, ct := range []string{"protobuf", "json"} {
			cl, err := metricsClient(c, route, port, ct)
			if err != nil {
				return r, err
			}
			clients[route+"/"+ct] = cl
		}
	}
	// Through the apiserver only once the server itself has a complete
	// list, so the two polls do not load the machine together.
	r.FirstFullListDirectSeconds = <-direct
	for r.FirstFullListDirectSeconds > 0 && r.FirstFullListSeconds == 0 {
		if time.Since(began) > limit {
			return r, fmt.Errorf("no complete list through the apiserver %v after start", time.Since(began).Round(time.Second))
		}
		t := time.Now()
		if complete(clients["apiserver/protobuf"]) {
			r.FirstFullListSeconds = time.Since(began).Seconds()
			break
		}
		time.Sleep(max(100*time.Millisecond, time.Since(t)))
	}
	if r.FirstFullListDirectSeconds == 0 {
		return r, fmt.Errorf("no complete list straight from the server within %v (see logs/metrics-server.log in the -dir folder)", limit)
	}
	logf("%s: first complete list after %.1fs (straight from the server %.1fs)", mc.name, r.FirstFullListSeconds, r.FirstFullListDirectSeconds)

	// Steady state: CPU and RSS over the window, kubelet requests. The
	// first cycle after the start-up ones is left out.
	time.Sleep(mc.res)
	var snap0 apiserverSnapshot
	if probe != nil {
		if snap0, err = probe.begin(ctx); err != nil {
			return r, err
		}
	}
	cpu0, err := cpuTicks(pid)
	if err != nil {
		return r, err
	}
	fl.StartRecording()
	t0 := time.Now()
	var rss []float64
	// profile saves, in the background after a delay, the server's
	// profiles (with -profile) and the kube-apiserver's (with
	// -apiserver-profile), their files tagged.
	profile := func(tag string, after time.Duration) {
		go func() {
			time.Sleep(after)
			if mc.profileDir != "" {
				go saveProfiles(ctx, c, port, mc, tag, logf)
			}
			if probe == nil || mc.apiserverProfileDir == "" {
				return
			}
			prefix := filepath.Join(mc.apiserverProfileDir, fmt.Sprintf("%s-%d-%skube-apiserver-", mc.name, mc.nodes, tag))
			if err := probe.saveProfiles(ctx, prefix); err != nil {
				logf("%s: kube-apiserver profile: %v", mc.name, err)
				return
			}
			logf("%s: wrote %s{cpu,allocs-0,allocs-1}.pprof", mc.name, prefix)
		}()
	}
	profiled := false
	for time.Since(t0) < mc.steady {
		if v, err := rssMiB(pid); err == nil {
			rss = append(rss, v)
		}
		if !profiled && time.Since(t0) > mc.steady/4 {
			profiled = true
			profile("", 0)
		}
		time.Sleep(time.Second)
	}
	cpu1, err := cpuTicks(pid)
	if err != nil {
		return r, err
	}
	reqs := fl.StopRecording()
	if probe != nil {
		snap1, err := probe.end(ctx)
		if err != nil {
			return r, err
		}
		load, err := probe.load(snap0, snap1)
		if err != nil {
			return r, err
		}
		r.APIServer = &load
	}
	elapsed := time.Since(t0)
	if len(rss) == 0 {
		return r, fmt.Errorf("no RSS sample of pid %d", pid)
	}
	r.CPUSecondsPerMinute = float64(cpu1-cpu0) / clockTicks / elapsed.Minutes()
	r.MilliCoresPerNode = r.CPUSecondsPerMinute / 60 * 1000 / float64(mc.nodes)
	sort.Float64s(rss)
	r.RSSPeakMiB = rss[len(rss)-1]
	r.RSSSteadyMiB = rss[len(rss)/2]
	r.KiBPerNode = r.RSSSteadyMiB * 1024 / float64(mc.nodes)
	cycles := cyclesOf(reqs, mc.res/3)
	// Only whole cycles inside the window count.
	if len(cycles) > 2 {
		cycles = cycles[1 : len(cycles)-1]
	}
	r.Cycles = len(cycles)
	var durs, spreads []float64
	perNode := map[string]int{}
	total := 0
	for _, cy := range cycles {
		durs = append(durs, cy.duration.Seconds())
		spreads = append(spreads, cy.spread.Seconds())
		for _, q := range cy.reqs {
			perNode[q.Node]++
			total++
		}
	}
	if len(cycles) > 0 {
		sort.Float64s(durs)
		sort.Float64s(spreads)
		r.CycleP50, r.CycleMax = durs[len(durs)/2], durs[len(durs)-1]
		r.SpreadP50 = spreads[len(spreads)/2]
		r.KubeletRequestsPerNodePerCycle = float64(total) / float64(mc.nodes) / float64(len(cycles))
		r.KubeletRequestsMinMaxPerNode = [2]int{-1, 0}
		for _, name := range fl.NodeNames() {
			if strings.HasSuffix(name, "-host") {
				continue
			}
			h := perNode[name]
			if r.KubeletRequestsMinMaxPerNode[0] < 0 || h < r.KubeletRequestsMinMaxPerNode[0] {
				r.KubeletRequestsMinMaxPerNode[0] = h
			}
			r.KubeletRequestsMinMaxPerNode[1] = max(r.KubeletRequestsMinMaxPerNode[1], h)
		}
	}

	// LIST latency while the server also scrapes: time to the last byte
	// of the whole list, raw, so that the client's decoding (the same for
	// every server) does not dilute the server's share.
	for _, kind := range []string{"pods", "nodes"} {
		for _, key := range []string{"apiserver/protobuf", "apiserver/json", "direct/protobuf", "direct/json"} {
			cl := clients[key]
			mime := "application/json"
			if strings.HasSuffix(key, "protobuf") {
				mime = "application/vnd.kubernetes.protobuf"
			}
			list := func() error {
				b, err := cl.MetricsV1beta1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1", kind).
					SetHeader("Accept", mime).DoRaw(ctx)
				if err == nil && len(b) < 8 {
					err = fmt.Errorf("a %d-byte list", len(b))
				}
				return err
			}
			var before uint64
			through := probe != nil && strings.HasPrefix(key, "apiserver/")
			if through {
				before, _ = cpuTicks(probe.pid)
			}
			l := timeIt(20, 45*time.Second, list)
			if through && l.N > 0 {
				if after, err := cpuTicks(probe.pid); err == nil {
					l.APIServerCPUMs = float64(after-before) * 1000 / clockTicks / float64(l.N)
				}
			}
			r.List[kind+"/"+key] = l
		}
	}
	if mc.consumerWindow > 0 {
		// The descheduler's metrics client is a generated clientset with
		// the default content type: JSON.
		// Not held back by a client-side rate limit: the pattern's rate
		// is what is measured (a negative QPS turns client-go's off).
		cl, err := metricsClientQPS(c, "apiserver", port, "json", -1)
		if err != nil {
			return r, err
		}
		get := func(ctx context.Context, name string) error {
			b, err := cl.MetricsV1beta1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes", name).
				SetHeader("Accept", "application/json").DoRaw(ctx)
			if err == nil && len(b) < 8 {
				err = fmt.Errorf("a %d-byte answer", len(b))
			}
			return err
		}
		plan := consumerPlan{names: fl.NodeNames(), period: mc.consumerPeriod, window: mc.consumerWindow, workers: mc.consumerWorkers, get: get, serverPID: pid}
		if probe != nil {
			plan.apiserverPID = probe.pid
		}
		// Profiles of this window too, when asked for: the server's and
		// the kube-apiserver's CPU here is per request, not per scrape.
		if mc.consumerWindow >= 40*time.Second {
			profile("consumer-", 5*time.Second)
		}
		logf("%s: the descheduler's pattern: a GET of each of %d nodes every %v through the kube-apiserver, for %v", mc.name, len(plan.names), plan.period, plan.window)
		cl2 := runPerNodeGets(ctx, plan)
		r.Consumer = &cl2
		logf("%s: %.0f GETs/s (want %.0f), p50 %.1f ms p99 %.1f ms, %d errors, %d of %d rounds late; server %.2f CPU s/min, kube-apiserver %.2f", mc.name,
			cl2.PerSecond, cl2.WantPerSecond, cl2.P50, cl2.P99, cl2.Errors, cl2.LateRounds, cl2.Rounds, cl2.ServerCPUSecondsPerMinute, cl2.APIServerCPUSecondsPerMinute)
	}
	l := r.List["pods/apiserver/protobuf"]
	logf("%s: %.2f CPU s/min, RSS %.0f MiB, cycle p50 %.2fs, LIST pods p50 %.0f ms", mc.name, r.CPUSecondsPerMinute, r.RSSSteadyMiB, r.CycleP50, l.P50)
	if r.APIServer != nil {
		logf("%s: kube-apiserver %.2f CPU s/min in the steady window", mc.name, r.APIServer.CPUSecondsPerMinute)
	}
	return r, nil
}

// measureIdle measures the kube-apiserver over d with no server running.
func measureIdle(ctx context.Context, probe *apiserverProbe, d time.Duration) (*APIServerLoad, error) {
	a, err := probe.begin(ctx)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	b, err := probe.end(ctx)
	if err != nil {
		return nil, err
	}
	l, err := probe.load(a, b)
	return &l, err
}

// cycle is one scrape cycle as the fleet saw it.
type cycle struct {
	reqs     []fleet.Request
	duration time.Duration // first arrival to last answer
	spread   time.Duration // first arrival to last arrival
}

// cyclesOf splits requests (in arrival order) into cycles: a pause of at
// least gap between two arrivals starts a new one.
func cyclesOf(reqs []fleet.Request, gap time.Duration) []cycle {
	var out []cycle
	start := 0
	for i := 1; i <= len(reqs); i++ {
		if i < len(reqs) && reqs[i].Arrived.Sub(reqs[i-1].Arrived) < gap {
			continue
		}
		cy := cycle{reqs: reqs[start:i]}
		first := cy.reqs[0].Arrived
		var lastDone time.Time
		for _, q := range cy.reqs {
			if q.Done.After(lastDone) {
				lastDone = q.Done
			}
		}
		cy.duration = lastDone.Sub(first)
		cy.spread = cy.reqs[len(cy.reqs)-1].Arrived.Sub(first)
		out = append(out, cy)
		start = i
	}
	return out
}

// metricsClient talks to the metrics API through the kube-apiserver or
// straight to the server's port, with the admin identity.
func metricsClient(c *localcluster.Cluster, route string, port int, ct string) (*metricsclient.Clientset, error) {
	return metricsClientQPS(c, route, port, ct, 100)
}

// metricsClientQPS is metricsClient with a client-side rate limit of qps
// (negative: none).
func metricsClientQPS(c *localcluster.Cluster, route string, port int, ct string, qps float32) (*metricsclient.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	if route == "direct" {
		cfg = &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(port), TLSClientConfig: rest.TLSClientConfig{
			CAFile:   c.PKI.Path(pki.ClusterCA + ".crt"),
			CertFile: c.PKI.Path(pki.Admin + ".crt"),
			KeyFile:  c.PKI.Path(pki.Admin + ".key"),
		}}
	}
	mime := map[string]string{"protobuf": "application/vnd.kubernetes.protobuf", "json": "application/json"}[ct]
	cfg.ContentConfig = rest.ContentConfig{ContentType: mime, AcceptContentTypes: mime}
	cfg.QPS, cfg.Burst = qps, max(int(qps), 100)
	cfg.Timeout = time.Minute
	return metricsclient.NewForConfig(cfg)
}

// saveProfiles fetches a 30 s CPU profile and a heap profile straight from
// the server (the generic server's /debug/pprof, admin identity).
// tag goes between the size and the file name ("consumer-" for the
// consumer pattern's window).
func saveProfiles(ctx context.Context, c *localcluster.Cluster, port int, mc measureConfig, tag string, logf func(string, ...any)) {
	cfg := &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(port), Timeout: time.Minute, TLSClientConfig: rest.TLSClientConfig{
		CAFile: c.PKI.Path(pki.ClusterCA + ".crt"), CertFile: c.PKI.Path(pki.Admin + ".crt"), KeyFile: c.PKI.Path(pki.Admin + ".key"),
	}}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		logf("%s: profiles: %v", mc.name, err)
		return
	}
	if err := os.MkdirAll(mc.profileDir, 0o755); err != nil {
		logf("%s: profiles: %v", mc.name, err)
		return
	}
	for file, path := range map[string]string{"cpu.pprof": "/debug/pprof/profile?seconds=30", "heap.pprof": "/debug/pprof/heap"} {
		name := filepath.Join(mc.profileDir, fmt.Sprintf("%s-%d-%s%s", mc.name, mc.nodes, tag, file))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			logf("%s: %s: %v", mc.name, path, err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			logf("%s: %s: %v %s", mc.name, path, err, resp.Status)
			continue
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			logf("%s: %v", mc.name, err)
			continue
		}
		logf("%s: wrote %s", mc.name, name)
	}
}

// timeIt runs fn up to n times (at least 3, then while under budget) and
// returns p50 and p99 in milliseconds; failed calls are counted and their
// time is included.
func timeIt(n int, budget time.Duration, fn func() error) Latency {
	ds := make([]float64, 0, n)
	l := Latency{}
	began := time.Now()
	for i := range n {
		if i >= 3 && time.Since(began) > budget {
			break
		}
		t := time.Now()
		if err := fn(); err != nil {
			l.Errors++
		}
		ds = append(ds, float64(time.Since(t).Microseconds())/1000)
	}
	sort.Float64s(ds)
	l.N = len(ds)
	l.P50, l.P99 = ds[len(ds)/2], ds[(len(ds)*99)/100]
	return l
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

// countListItems counts the items of a list in the Kubernetes protobuf
// envelope ("k8s\x00", then runtime.Unknown whose field 2 is the list,
// whose field 2 repeats once per item) without decoding the items.
func countListItems(b []byte) (int, error) {
	raw, ok := bytes.CutPrefix(b, []byte("k8s\x00"))
	if !ok {
		return 0, errors.New("not a Kubernetes protobuf answer")
	}
	list, err := protoField(raw, 2)
	if err != nil {
		return 0, fmt.Errorf("envelope: %w", err)
	}
	n := 0
	for len(list) > 0 {
		num, typ, l := protowire.ConsumeTag(list)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		list = list[l:]
		m := protowire.ConsumeFieldValue(num, typ, list)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		if num == 2 && typ == protowire.BytesType {
			n++
		}
		list = list[m:]
	}
	return n, nil
}

// protoField returns the first length-delimited field num of message b.
func protoField(b []byte, num protowire.Number) ([]byte, error) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			return v, nil
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil, fmt.Errorf("no field %d", num)
}
