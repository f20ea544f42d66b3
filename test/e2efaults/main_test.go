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
	suite   *localcluster.Suite
	cluster *localcluster.Cluster
	fleet   *fleet.Fleet
	client  kubernetes.Interface
	metrics metricsclient.Interface
	server  localcluster.MetricsServer
	port    int
	roles   roles
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.Main(m, "e2efaults", []string{"-race"}, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s, roles: newRoles()}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

// setUp starts, beside the control plane localcluster.Main started (and
// our server, that it built with the race detector), the fleet (its faults
// from the start: the hanging nodes and the clocks that were always off),
// the workload and our server.
func (e *env) setUp(ctx context.Context) error {
	s := e.suite
	e.cluster, e.client = s.Cluster, s.Client
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
	ca, err := s.LoadCA(pki.KubeletCA)
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
	e.server, e.port, err = s.StartMetricsServer(ctx,
		"--metric-resolution="+resolution.String(),
		"--kubelet-max-concurrency="+fmt.Sprint(concurrency),
		"-v=2",
	)
	if err != nil {
		return err
	}
	logf("cluster, %d-node fleet and server ready in %v; logs in %s/logs", e.roles.total, s.Elapsed(), s.Dir)
	return nil
}
