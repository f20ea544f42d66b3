// Command playground runs the local cluster: the control plane on loopback,
// our metrics server registered through the aggregation layer, and a fleet
// of simulated kubelets; it prints kubectl top and keeps running until
// Ctrl-C. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
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
	withHost := flag.Bool("host", true, "add a node whose CPU and memory are this machine's (cAdvisor)")
	flag.Parse()
	if *down {
		return localcluster.StopPIDs(*dir)
	}
	absBin, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	_ = localcluster.StopPIDs(*dir)
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	// So `make demo-down` from another shell stops this process too.
	if err := os.MkdirAll(filepath.Join(*dir, "pids"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "pids", "playground"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
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
	var host *fleet.HostStats
	if *withHost {
		if host, err = fleet.NewHostStats(); err != nil {
			return fmt.Errorf("reading this machine with cAdvisor (run with -host=false to skip): %w", err)
		}
		defer host.Stop()
	}
	fl, err := fleet.New(fleet.Config{Client: client, Nodes: *nodes, KubeletCA: kubeletCA, Authenticate: true, Host: host, AddressBase: 3, Logf: logf})
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
	if err := demoWorkloads(ctx, c); err != nil {
		return err
	}
	logf("waiting for two scrapes so rates exist")
	for _, what := range []string{"nodes", "pods"} {
		out, err := waitTop(ctx, c, what)
		if err != nil {
			return err
		}
		fmt.Printf("\n$ kubectl top %s%s\n%s", what, map[string]string{"pods": " -A"}[what], out)
	}
	helmDir := filepath.Join(repo, "test/.cache/bin/helm-v3.22.0")
	serverBin, err := filepath.Abs(*server)
	if err != nil {
		return err
	}
	fmt.Print(nextSteps(c.AdminKubeconfig, absBin, helmDir, serverBin, c.PKI.Path(pki.KubeletCA+".crt"), port, *dir))
	<-ctx.Done()
	logf("stopping")
	return nil
}

// demoWorkloads creates two Deployments whose pods the fleet runs with
// a known load.
func demoWorkloads(ctx context.Context, c *localcluster.Cluster) error {
	manifest := `apiVersion: v1
kind: Namespace
metadata:
  name: demo
`
	for _, d := range []struct {
		name, usage string
		replicas    int
	}{{"web", "cpu=120m,memory=96Mi", 3}, {"worker", "cpu=350m,memory=256Mi", 2}} {
		manifest += fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: demo
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
      annotations: {%[4]s: "%[2]s"}
    spec:
      containers:
      - name: %[1]s
        image: registry.invalid/%[1]s:1
        resources:
          requests: {cpu: 500m, memory: 512Mi}
`, d.name, d.usage, d.replicas, fleet.UsageAnnotation)
	}
	// The namespace's default ServiceAccount must exist before its pods.
	for i := 0; ; i++ {
		_, err := c.KubectlAs(ctx, c.AdminKubeconfig, []byte(manifest), "apply", "-f", "-")
		if err == nil {
			return nil
		}
		if i == 30 {
			return err
		}
		time.Sleep(time.Second)
	}
}

// waitTop runs kubectl top until it shows every demo pod, or every node.
func waitTop(ctx context.Context, c *localcluster.Cluster, what string) (string, error) {
	args := []string{"top", what}
	if what == "pods" {
		args = append(args, "-A")
	}
	var last error
	for i := 0; i < 60; i++ {
		out, err := c.Kubectl(ctx, args...)
		// Every node has a rate, and every demo pod is listed.
		if err == nil && !strings.Contains(out, "<unknown>") && (what == "nodes" || strings.Count(out, "\n") >= 6) {
			return out, nil
		}
		last = err
		if last == nil {
			last = errors.New("not every pod has metrics yet")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return "", fmt.Errorf("kubectl top %s: %w", what, last)
}

// nextSteps is what the playground prints once it is ready: the
// environment for the kubectl and helm it built, things to try, and the
// troubleshooting commands with this run's port and paths, ready to paste.
func nextSteps(kubeconfig, binDir, helmDir, server, kubeletCA string, port int, dir string) string {
	return fmt.Sprintf(`
The cluster keeps running until Ctrl-C (or `+"`make demo-down`"+` from another shell). In another shell:
  export KUBECONFIG=%[1]s
  export PATH=%[2]s:%[3]s:$PATH    # kubectl v1.37.2 and helm v3.22.0, as built here
  kubectl top pods -A --containers
  kubectl get --raw /apis/metrics.k8s.io/v1/nodes
  kubectl annotate pods -n demo -l app=worker --overwrite %[4]s=cpu=900m,memory=300Mi
Troubleshooting (the server runs as a process here, so doctor gets its flags and status its address):
  %[5]s doctor --server-args "--kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port" \
    --kubelet-certificate-authority %[6]s
  %[5]s status --server https://127.0.0.1:%[7]d --tls-server-name metrics-server.kube-system.svc
Logs: %[8]s/logs
`, kubeconfig, binDir, helmDir, fleet.UsageAnnotation, server, kubeletCA, port, dir)
}
