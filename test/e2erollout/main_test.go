package e2erollout

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// addressBase keeps this fleet's kubelets (127.44.x.y) apart from the other
// e2e packages' (see the package doc).
const addressBase = 44

// fleetNodes is the most replicas a variant runs; a variant with fewer
// cordons the rest, so the schedulable nodes always equal its replicas.
const fleetNodes = 2

// env is what every test shares, set up once by TestMain.
type env struct {
	suite   *localcluster.Suite
	repo    string
	helm    string
	cluster *localcluster.Cluster
	fleet   *fleet.Fleet
	client  kubernetes.Interface
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	// No server runs here (only its Deployment's pods, played by the
	// fleet), so the binary Main builds is built without the race
	// detector: the quicker build.
	os.Exit(localcluster.Main(m, "e2erollout", nil, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s, repo: s.Repo, helm: filepath.Join(s.Repo, "test/.cache/bin/helm-v3.22.0/helm")}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

// setUp starts the fleet beside the control plane localcluster.Main
// started (with kube-scheduler and kube-controller-manager).
func (e *env) setUp(ctx context.Context) error {
	s := e.suite
	e.cluster, e.client = s.Cluster, s.Client
	ca, err := s.LoadCA(pki.ClusterCA)
	if err != nil {
		return err
	}
	e.fleet, err = fleet.New(fleet.Config{Client: e.client, Nodes: fleetNodes, Prefix: "roll", KubeletCA: ca,
		AddressBase: addressBase, Logf: logf})
	if err != nil {
		return err
	}
	if err := e.fleet.Run(ctx); err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	logf("cluster and %d-node fleet ready in %v; logs in %s/logs", fleetNodes, s.Elapsed(), s.Dir)
	return nil
}
