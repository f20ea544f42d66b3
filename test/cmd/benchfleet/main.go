// Command benchfleet measures metrics servers side by side on the local
// control plane with a simulated fleet of N nodes x P pods x C containers:
// CPU and memory of the server process (from /proc), time to the first
// complete node and pod list, scrape cycles and their spread as the fleet
// saw them, LIST latency through the kube-apiserver and straight to the
// server, and the kubelet requests per node. Each binary runs in turn
// against the same fleet with the same upstream-compatible flags.
//
// Results go to <out>/results-<N>.json and .md; every run then redraws
// <out>/summary.md and <out>/plot.png from all results-*.json there, so
// runs at several fleet sizes make one plot.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchfleet:", err)
		os.Exit(1)
	}
}

func run() error {
	repo, _ := filepath.Abs("..")
	nodes := flag.Int("nodes", 100, "simulated nodes")
	pods := flag.Int("pods", 30, "pods per node")
	containers := flag.Int("containers", 2, "containers per pod")
	resolution := flag.Duration("resolution", 15*time.Second, "--metric-resolution of the servers")
	steady := flag.Duration("steady", time.Minute, "how long to measure steady state")
	ours := flag.String("binary", filepath.Join(repo, "_output/metrics-server"), "our metrics-server")
	compare := flag.String("compare", "", "another binary taking the upstream flags, measured after ours")
	compareName := flag.String("compare-name", "upstream", "the name of the -compare binary in the results")
	env := flag.String("env", "", "comma-separated KEY=VALUE environment for our binary")
	compareEnv := flag.String("compare-env", "", "comma-separated KEY=VALUE environment for the -compare binary")
	args := flag.String("args", "", "space-separated extra flags for our binary")
	compareArgs := flag.String("compare-args", "", "space-separated extra flags for the -compare binary")
	name := flag.String("name", "kubemetrics", "the name of our binary in the results")
	bin := flag.String("bin", filepath.Join(repo, "test/.cache/bin/v1.37.2"), "the pinned Kubernetes binaries")
	out := flag.String("out", filepath.Join(repo, "_output/bench-fleet"), "folder for the results, summary and plot")
	dir := flag.String("dir", "/tmp/kubemetrics-bench-fleet", "the cluster's folder")
	addressBase := flag.Int("address-base", 5, "second octet of the simulated nodes' loopback addresses (127.<base>.x.y), so two runs can coexist")
	profile := flag.Bool("profile", false, "save CPU and heap profiles of each server during steady state into <out>/profiles")
	podsVia := flag.String("pods-via", "etcd", "how the fleet's pods are made: etcd (written to storage, Running at once; fast) or apiserver (create and status update through the API, as a kubelet would; about 250 pods a second here)")
	plotOnly := flag.Bool("plot-only", false, "only redraw summary.md and plot.png from the results in -out")
	audit := flag.Bool("audit", true, "audit the kube-apiserver and each server (Metadata level) to attribute the requests of the steady window by user and user agent")
	idle := flag.Bool("apiserver-idle", true, "measure the kube-apiserver for a steady window with no server running, before the servers")
	apiserverProfile := flag.Bool("apiserver-profile", false, "run the kube-apiserver with --profiling=true and save a 30 s CPU profile of it in each server's steady window into <out>/profiles")
	coalesce := flag.Bool("coalesce-kubelet-auth", true, "send one review for concurrent identical TokenReviews and SubjectAccessReviews of the simulated kubelets, whose shared answer cache would otherwise send one per scrape arriving while it refreshes (see coalesce.go); false shows those bursts")
	consumerWindow := flag.Duration("consumer-window", time.Minute, "after the LISTs, run the descheduler's pattern (a GET of every node's NodeMetrics through the kube-apiserver each -consumer-period, spread over it) for this long and measure its cost; 0 skips it")
	consumerPeriod := flag.Duration("consumer-period", 5*time.Second, "the consumer pattern's period (the descheduler's metrics collector: 5s)")
	consumerWorkers := flag.Int("consumer-workers", 32, "GETs of the consumer pattern in flight at most")
	check := flag.Bool("check", false, "fail unless our server scraped every node exactly once per cycle, finished every cycle within 5s and served complete lists without errors (the CI smoke)")
	flag.Parse()
	if *plotOnly {
		return summarize(*out)
	}
	if *nodes < 1 || *pods < 0 || *containers < 1 {
		return fmt.Errorf("need -nodes >= 1, -pods >= 0, -containers >= 1")
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// Each simulated kubelet holds a listener and the server's connection:
	// two descriptors a node, more than a common 20,000 limit at 10,000
	// nodes. Raise it when allowed (root), else say so.
	if err := raiseOpenFiles(uint64(3**nodes + 4096)); err != nil {
		fmt.Fprintln(os.Stderr, "benchfleet: warning:", err)
	}
	logf := func(f string, a ...any) { fmt.Printf("[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...)) }
	_ = localcluster.StopPIDs(*dir)
	_ = os.RemoveAll(*dir)
	auditDir := filepath.Join(*dir, "audit")
	var policy, apiserverAudit string
	var err error
	var apiserverArgs []string
	if *audit {
		if policy, err = writeAuditPolicy(auditDir); err != nil {
			return err
		}
		apiserverAudit = filepath.Join(auditDir, "kube-apiserver.log")
		apiserverArgs = append(apiserverArgs, "--audit-policy-file="+policy, "--audit-log-path="+apiserverAudit)
	}
	if *apiserverProfile {
		apiserverArgs = append(apiserverArgs, "--profiling=true")
	}
	c, err := localcluster.Start(ctx, localcluster.Options{BinDir: *bin, Dir: *dir, Logf: logf, ControlPlaneOnly: true, EtcdQuotaBytes: 8 << 30, APIServerArgs: apiserverArgs})
	if err != nil {
		return err
	}
	defer c.Stop()
	// The simulator's writes are many and small; its client is not the
	// thing under test, so it is not held back.
	client, err := fleetClient(c.AdminKubeconfig, *coalesce)
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(c.PKI.Path(pki.KubeletCA+".crt"), c.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		return err
	}
	fcfg := fleet.Config{Client: client, Nodes: *nodes, Prefix: "bench", KubeletCA: ca, AddressBase: *addressBase,
		Authenticate: true, Parallelism: 96, NoLeases: true, FastResource: true, Logf: logf}
	fl, err := fleet.New(fcfg)
	if err != nil {
		return err
	}
	if err := fl.Run(ctx); err != nil {
		return err
	}
	start := time.Now()
	want := *nodes * *pods
	switch *podsVia {
	case "etcd":
		ips := map[string]string{}
		for i := range *nodes {
			ips[fcfg.NodeName(i)] = fcfg.NodeIP(i).String()
		}
		if err := writePodsToEtcd(ctx, c.EtcdURL, fl.NodeNames(), ips, *pods, *containers); err != nil {
			return err
		}
	case "apiserver":
		if err := createPods(ctx, client, fl.NodeNames(), *pods, *containers, 96); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-pods-via %q: want etcd or apiserver", *podsVia)
	}
	logf("created %d pods in %v (%.0f/s)", want, time.Since(start).Round(time.Millisecond), float64(want)/time.Since(start).Seconds())
	if err := waitPodsRunning(ctx, fl, want, 30*time.Minute, logf); err != nil {
		return err
	}
	logf("%d pods created and running in %v (%.0f/s)", want, time.Since(start).Round(time.Millisecond), float64(want)/time.Since(start).Seconds())
	listTook, listed, err := timePodMetadataList(ctx, c.AdminKubeconfig)
	if err != nil {
		return err
	}
	logf("kube-apiserver alone: metadata of %d running pods listed in %v (pages of 500, as a pod informer)", listed, listTook.Round(time.Millisecond))
	probe, err := newAPIServerProbe(*dir, c.AdminKubeconfig, apiserverAudit)
	if err != nil {
		return err
	}
	var idleLoad *APIServerLoad
	if *idle {
		// The pod list above is over; let the kube-apiserver settle first.
		time.Sleep(*resolution)
		if idleLoad, err = measureIdle(ctx, probe, *steady); err != nil {
			return err
		}
		logf("kube-apiserver with no server running: %.2f CPU s/min", idleLoad.CPUSecondsPerMinute)
	}

	type run struct {
		name, binary string
		env, args    []string
		// waitFor: the APIServices the binary serves (upstream v0.9.0
		// serves no v1).
		waitFor []string
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	runs := []run{{*name, *ours, split(*env), strings.Fields(*args), nil}}
	if *compare != "" {
		runs = append(runs, run{*compareName, *compare, split(*compareEnv), strings.Fields(*compareArgs), []string{"v1beta1.metrics.k8s.io"}})
	}
	var results []Result
	for _, r := range runs {
		mc := measureConfig{name: r.name, binary: r.binary, env: r.env, args: r.args, waitFor: r.waitFor, manifests: filepath.Join(repo, "manifests/overlays/local"),
			nodes: *nodes, pods: *pods, containers: *containers, res: *resolution, steady: *steady, logf: logf,
			probe: probe, auditPolicy: policy, auditDir: auditDir,
			consumerWindow: *consumerWindow, consumerPeriod: *consumerPeriod, consumerWorkers: *consumerWorkers}
		if *profile {
			mc.profileDir = filepath.Join(*out, "profiles")
		}
		if *apiserverProfile {
			mc.apiserverProfileDir = filepath.Join(*out, "profiles")
		}
		res, err := measure(ctx, c, fl, mc)
		res.APIServerPodListSeconds = listTook.Seconds()
		res.APIServerIdle = idleLoad
		c.StopMetricsServer()
		// The next binary writes the same log file: keep this one's.
		keepLog(filepath.Join(*dir, "logs", "metrics-server.log"), filepath.Join(*out, "logs", fmt.Sprintf("%s-%d.log", r.name, *nodes)), logf)
		if *audit {
			keepLog(filepath.Join(auditDir, r.name+".log"), filepath.Join(*out, "logs", fmt.Sprintf("%s-%d-audit.log", r.name, *nodes)), logf)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		results = append(results, res)
	}
	if *audit {
		keepLog(apiserverAudit, filepath.Join(*out, "logs", fmt.Sprintf("kube-apiserver-%d-audit.log", *nodes)), logf)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(*out, fmt.Sprintf("results-%d.json", *nodes)), results); err != nil {
		return err
	}
	md := markdown(results)
	if err := os.WriteFile(filepath.Join(*out, fmt.Sprintf("results-%d.md", *nodes)), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(md)
	if err := summarize(*out); err != nil {
		return err
	}
	if *check {
		return checkOurs(results[0])
	}
	return nil
}

// checkOurs holds our server to what the smoke run promises.
func checkOurs(r Result) error {
	var problems []string
	if r.Cycles < 2 {
		problems = append(problems, fmt.Sprintf("only %d whole scrape cycles seen", r.Cycles))
	}
	if lo, hi := r.KubeletRequestsMinMaxPerNode[0], r.KubeletRequestsMinMaxPerNode[1]; lo != r.Cycles || hi != r.Cycles {
		problems = append(problems, fmt.Sprintf("kubelet requests per node %d-%d over %d cycles, want exactly one per cycle", lo, hi, r.Cycles))
	}
	if r.CycleMax > 5 {
		problems = append(problems, fmt.Sprintf("longest cycle %.2fs, want at most 5s", r.CycleMax))
	}
	for _, k := range listKeys {
		if l := r.List[k]; l.Errors > 0 || l.N == 0 {
			problems = append(problems, fmt.Sprintf("LIST %s: %d errors in %d runs", k, l.Errors, l.N))
		}
	}
	if c := r.Consumer; c != nil && (c.Errors > 0 || c.Requests == 0) {
		problems = append(problems, fmt.Sprintf("the descheduler's pattern: %d errors in %d GETs", c.Errors, c.Requests))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", r.Name, strings.Join(problems, "; "))
	}
	fmt.Printf("check passed: %s scraped each of %d nodes once in each of %d cycles, longest cycle %.2fs\n", r.Name, r.Nodes, r.Cycles, r.CycleMax)
	return nil
}

// raiseOpenFiles lifts RLIMIT_NOFILE to at least n.
func raiseOpenFiles(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = n
	if lim.Max < n {
		lim.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open files limit to %d: %w (a fleet this size may run out of descriptors)", n, err)
	}
	return nil
}

// keepLog copies a server's log out of the cluster folder.
func keepLog(from, to string, logf func(string, ...any)) {
	b, err := os.ReadFile(from)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(to), 0o755); err == nil {
			err = os.WriteFile(to, b, 0o644)
		}
	}
	if err != nil {
		logf("keeping the server log: %v", err)
	}
}

// fleetClient is the simulator's admin client (protobuf, 5,000 requests a
// second), its reviews coalesced when asked.
func fleetClient(kubeconfig string, coalesce bool) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 5000, 5000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if coalesce {
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return newReviewCoalescer(rt) }
	}
	return kubernetes.NewForConfig(cfg)
}
