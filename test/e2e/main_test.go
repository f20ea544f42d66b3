// Package e2e runs the metrics server in a real local control plane (the
// kube-apiserver's aggregation layer, the kubectl we build, the HPA
// controller of kube-controller-manager) against a fleet of simulated
// kubelets, and checks what users see.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The environment every test shares, set up once by TestMain.
var (
	cluster    *localcluster.Cluster
	sim        *fleet.Fleet
	host       *fleet.HostStats
	client     kubernetes.Interface
	serverArgs localcluster.MetricsServer
	serverPort int
	repoRoot   string
)

const resolution = 10 * time.Second

// Node modes: both formats are exercised, and a failing /metrics/resource.
var nodeModes = map[int]fleet.Mode{
	2: fleet.ModeSummaryOnly,
	3: fleet.ModeResourceOnly,
	4: fleet.ModeResource500,
}

// fleetNodes are simulated; one more node, e2e-host, reports this
// machine's real usage.
const (
	fleetNodes = 6
	hostNode   = "e2e-host"
	allNodes   = fleetNodes + 1
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	repoRoot, err = filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubemetrics-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keep := false
	defer func() {
		if !keep {
			_ = os.RemoveAll(dir)
		}
	}()
	logf := func(f string, a ...any) {
		fmt.Printf("e2e [%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...))
	}

	binary := filepath.Join(dir, "metrics-server")
	build := exec.Command("go", "build", "-race", "-o", binary, "./cmd/metrics-server")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building metrics-server:", err)
		return 1
	}
	cluster, err = localcluster.Start(ctx, localcluster.Options{
		BinDir: filepath.Join(repoRoot, "test/.cache/bin/v1.37.2"),
		Dir:    dir,
		Logf:   logf,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		keep = true
		return 1
	}
	defer cluster.Stop()
	if client, err = cluster.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ca, err := pki.LoadCA(cluster.PKI.Path(pki.KubeletCA+".crt"), cluster.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if host, err = fleet.NewHostStats(); err != nil {
		fmt.Fprintln(os.Stderr, "reading this machine with cAdvisor:", err)
		return 1
	}
	defer host.Stop()
	sim, err = fleet.New(fleet.Config{Client: client, Nodes: fleetNodes, Prefix: "e2e", KubeletCA: ca, Modes: nodeModes, Authenticate: true, Host: host, Logf: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := sim.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "starting the fleet:", err)
		return 1
	}
	serverArgs = localcluster.MetricsServer{
		Binary:    binary,
		Manifests: filepath.Join(repoRoot, "manifests/overlays/local"),
		Args:      []string{"--metric-resolution=" + resolution.String(), "--kubelet-request-timeout=5s", "-v=2"},
	}
	if serverPort, err = cluster.StartMetricsServer(ctx, serverArgs); err != nil {
		fmt.Fprintln(os.Stderr, "starting metrics-server:", err)
		keep = true
		return 1
	}
	logf("cluster ready; logs in %s/logs", dir)
	code := m.Run()
	if code != 0 {
		keep = true
		logf("tests failed: logs kept in %s/logs", dir)
	}
	return code
}
