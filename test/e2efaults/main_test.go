// Package e2efaults runs the metrics server against a fleet in which many
// kubelets misbehave at once (hanging, slow just under and over the
// request timeout, flapping, deleted and re-added, clocks off by minutes)
// and through a kube-apiserver restart and a crash of the server itself,
// and checks through the typed metrics client, the kubectl we build and the
// HPA that nothing healthy goes missing or wrong.
//
// It has its own control plane, fleet and server process, apart from
// test/e2e's: its nodes listen on 127.40.x.y, its ports are picked free
// and its files live in their own temporary folder, so both packages can
// run at the same time.
package e2efaults

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
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// Timing of the server under test: the manifests' resolution
// (manifests/base/deployment.yaml) and upstream's default request timeout
// and staleness (two resolutions and the timeout).
const (
	resolution  = 15 * time.Second
	timeout     = 10 * time.Second
	staleness   = 2*resolution + timeout
	concurrency = 4
)

// addressBase keeps this fleet's kubelets (127.40.x.y) apart from test/e2e's
// (127.1), the playground's (127.3) and the benchmark's (127.5).
const addressBase = 40

// env is what every test shares, set up once by TestMain.
type env struct {
	dir     string
	cluster *localcluster.Cluster
	fleet   *fleet.Fleet
	client  kubernetes.Interface
	metrics metricsclient.Interface
	server  localcluster.MetricsServer
	port    int
	roles   roles
	// stop ends the fleet and the observers.
	stop context.CancelFunc
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "kubemetrics-e2efaults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e = &env{dir: dir, stop: cancel, roles: newRoles()}
	keep := false
	defer func() {
		if !keep {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := e.setUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2efaults:", err)
		fmt.Fprintf(os.Stderr, "e2efaults: logs kept in %s/logs\n", dir)
		keep = true
		if e.cluster != nil {
			e.cluster.Stop()
		}
		return 1
	}
	defer func() {
		cancel() // the fleet first: it talks to the apiserver
		e.cluster.Stop()
	}()
	code := m.Run()
	if code != 0 {
		keep = true
		logf("tests failed: logs kept in %s/logs", dir)
	}
	return code
}

func logf(f string, a ...any) {
	fmt.Printf("e2efaults [%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...))
}

// setUp builds our server with the race detector, starts the control plane,
// the fleet (its faults from the start: the hanging nodes and the clocks
// that were always off), the workload and our server.
func (e *env) setUp(ctx context.Context) error {
	began := time.Now()
	repo, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	binary := filepath.Join(e.dir, "metrics-server")
	build := exec.CommandContext(ctx, "go", "build", "-race", "-o", binary, "./cmd/metrics-server")
	build.Dir = repo
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building metrics-server: %w", err)
	}
	logf("built metrics-server in %v", time.Since(began).Round(time.Second))
	e.cluster, err = localcluster.Start(ctx, localcluster.Options{
		BinDir: filepath.Join(repo, "test/.cache/bin/v1.37.2"),
		Dir:    e.dir,
		Logf:   logf,
	})
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	if e.client, err = e.cluster.Client(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.cluster.AdminKubeconfig)
	if err != nil {
		return err
	}
	// As the HPA controller asks: protobuf.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if e.metrics, err = metricsclient.NewForConfig(cfg); err != nil {
		return err
	}
	ca, err := pki.LoadCA(e.cluster.PKI.Path(pki.KubeletCA+".crt"), e.cluster.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		return err
	}
	// Authenticate stays off: the fleet caches a failed TokenReview for a
	// minute, so an expiry while the kube-apiserver is down would fail
	// every node for a minute after it is back (a real kubelet does not
	// cache errors); that would test the simulator, not the server.
	e.fleet, err = fleet.New(fleet.Config{Client: e.client, Nodes: e.roles.total, Prefix: "flt", KubeletCA: ca,
		AddressBase: addressBase, Modes: e.roles.initialModes(), Logf: logf})
	if err != nil {
		return err
	}
	for name, skew := range e.roles.skewFromStart {
		if err := e.fleet.SetClockSkew(name, skew); err != nil {
			return err
		}
	}
	if err := e.fleet.Run(ctx); err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	if err := e.deployWorkload(ctx); err != nil {
		return err
	}
	e.server = localcluster.MetricsServer{
		Binary:    binary,
		Manifests: filepath.Join(repo, "manifests/overlays/local"),
		Args: []string{
			"--metric-resolution=" + resolution.String(),
			"--kubelet-max-concurrency=" + fmt.Sprint(concurrency),
			"-v=2",
		},
	}
	if e.port, err = e.cluster.StartMetricsServer(ctx, e.server); err != nil {
		return fmt.Errorf("starting metrics-server: %w", err)
	}
	logf("cluster, %d-node fleet and server ready in %v; logs in %s/logs", e.roles.total, time.Since(began).Round(time.Second), e.dir)
	return nil
}
