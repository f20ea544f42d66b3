// Command benchfleet measures metrics servers side by side on the local
// cluster with a simulated fleet of N nodes x P pods x C containers: CPU
// and memory of the server process (from /proc), time to the first
// complete node and pod list, LIST latency through the kube-apiserver, and
// the kubelet requests the fleet saw. Each binary runs in turn against the
// same fleet with the same upstream-compatible flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
	bin := flag.String("bin", filepath.Join(repo, "test/.cache/bin/v1.37.2"), "the pinned Kubernetes binaries")
	out := flag.String("out", filepath.Join(repo, "_output/bench-fleet"), "folder for results.json and results.md")
	dir := flag.String("dir", "/tmp/kubemetrics-bench-fleet", "the cluster's folder")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logf := func(f string, a ...any) { fmt.Printf("[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...)) }
	_ = localcluster.StopPIDs(*dir)
	_ = os.RemoveAll(*dir)
	c, err := localcluster.Start(ctx, localcluster.Options{BinDir: *bin, Dir: *dir, Logf: logf})
	if err != nil {
		return err
	}
	defer c.Stop()
	client, err := c.Client()
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(c.PKI.Path(pki.KubeletCA+".crt"), c.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		return err
	}
	fl, err := fleet.New(fleet.Config{Client: client, Nodes: *nodes, Prefix: "bench", KubeletCA: ca, AddressBase: 5, Authenticate: true, Parallelism: 64, Logf: logf})
	if err != nil {
		return err
	}
	if err := fl.Run(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := createPods(ctx, client, fl.NodeNames(), *pods, *containers); err != nil {
		return err
	}
	logf("created %d pods in %v", *nodes**pods, time.Since(start).Round(time.Millisecond))
	if err := waitPodsRunning(ctx, client, *nodes**pods, logf); err != nil {
		return err
	}

	runs := []struct{ name, binary string }{{"kubemetrics", *ours}}
	if *compare != "" {
		runs = append(runs, struct{ name, binary string }{"compare", *compare})
	}
	var results []Result
	for _, r := range runs {
		res, err := measure(ctx, c, fl, r.name, r.binary, filepath.Join(repo, "manifests/overlays/local"), *nodes, *nodes**pods, *resolution, *steady, logf)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		results = append(results, res)
		c.StopMetricsServer()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "results.json"), b, 0o644); err != nil {
		return err
	}
	md := markdown(results, *nodes, *pods, *containers, *resolution)
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(md)
	fmt.Println("\nwrote", filepath.Join(*out, "results.json"), "and results.md")
	return nil
}

func markdown(rs []Result, nodes, pods, containers int, res time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes x %d pods x %d containers, --metric-resolution=%v\n\n", nodes, pods, containers, res)
	b.WriteString("| binary | CPU s/min | millicores/node | RSS steady MiB | RSS peak MiB | KiB/node | first full list s | LIST pods p50 ms (proto) | p99 ms | LIST pods p50 ms (json) | LIST nodes p50 ms | kubelet requests/node/cycle |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.2f | %.4f | %.0f | %.0f | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %.2f |\n",
			r.Name, r.CPUSecondsPerMinute, r.MilliCoresPerNode, r.RSSSteadyMiB, r.RSSPeakMiB, r.KiBPerNode, r.FirstFullListSeconds,
			r.ListPodsProto.P50, r.ListPodsProto.P99, r.ListPodsJSON.P50, r.ListNodesProto.P50, r.KubeletRequestsPerNodePerCycle)
	}
	return b.String()
}
