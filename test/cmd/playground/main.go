// Command playground runs the local cluster: the control plane on loopback,
// our metrics server registered through the aggregation layer, and a fleet
// of simulated kubelets; it prints kubectl top and keeps running until
// Ctrl-C. `make demo` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "playground:", err)
		os.Exit(1)
	}
}

func run() error {
	repo, _ := filepath.Abs("..")
	dir := flag.String("dir", "/tmp/kubemetrics-playground", "folder for the cluster's state, logs and kubeconfig")
	bin := flag.String("bin", filepath.Join(repo, "test/.cache/bin/v1.37.2"), "folder of the pinned Kubernetes binaries")
	server := flag.String("metrics-server", filepath.Join(repo, "_output/metrics-server"), "our metrics-server binary")
	down := flag.Bool("down", false, "stop a playground left running in --dir and exit")
	nodes := flag.Int("nodes", 3, "simulated nodes in the fleet")
	flag.Parse()
	if *down {
		return localcluster.StopPIDs(*dir)
	}
	_ = localcluster.StopPIDs(*dir)
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logf := func(f string, a ...any) { fmt.Printf("[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...)) }
	c, err := localcluster.Start(ctx, localcluster.Options{BinDir: *bin, Dir: *dir, Logf: logf})
	if err != nil {
		return err
	}
	defer c.Stop()
	client, err := c.Client()
	if err != nil {
		return err
	}
	kubeletCA, err := pki.LoadCA(c.PKI.Path(pki.KubeletCA+".crt"), c.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		return err
	}
	fl, err := fleet.New(fleet.Config{Client: client, Nodes: *nodes, KubeletCA: kubeletCA, Authenticate: true, Logf: logf})
	if err != nil {
		return err
	}
	if err := fl.Run(ctx); err != nil {
		return err
	}
	port, err := c.StartMetricsServer(ctx, localcluster.MetricsServer{
		Binary:    *server,
		Manifests: filepath.Join(repo, "manifests/overlays/local"),
		Args:      []string{"--metric-resolution=15s"},
	})
	if err != nil {
		return err
	}
	logf("metrics-server serving on 127.0.0.1:%d; both APIServices Available", port)
	logf("export KUBECONFIG=%s", c.AdminKubeconfig)
	<-ctx.Done()
	logf("stopping")
	return nil
}
