// Package e2econsumers runs real consumers of the metrics API, built from
// their published Go modules at pinned releases, against our server
// through the kube-apiserver's aggregation layer: the Vertical Pod
// Autoscaler's recommender (a VerticalPodAutoscaler gets a recommendation
// from the usage we serve) and the descheduler's LowNodeUtilization with
// metrics (it classifies nodes by the NodeMetrics we serve and evicts by
// the PodMetrics). Each runs as its own ServiceAccount with the RBAC its
// project ships, as it would in a cluster.
//
// It has its own control plane, fleet (127.52.x.y) and server process,
// apart from the other packages'. Its set-up builds the consumers with
// test/tools/build-k8s.sh (vpa-recommender, descheduler) when they are
// not in test/.cache/bin yet.
package e2econsumers

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// addressBase keeps this fleet's kubelets (127.52.x.y) apart from the
// other packages' (e2e 1, playground 3, benchmark 7, e2efaults 40 ...,
// e2eswap 50, 51).
const addressBase = 52

// The consumers' releases: test/tools/build-k8s.sh builds them from the
// wrapper modules test/tools/<name>, whose go.mod pins the same versions.
const (
	vpaModule          = "k8s.io/autoscaler/vertical-pod-autoscaler"
	vpaVersion         = "v1.8.1"
	deschedulerModule  = "sigs.k8s.io/descheduler"
	deschedulerVersion = "v0.36.0"
)

// The server's timing: the shortest resolution it accepts.
const resolution = 10 * time.Second

// The fleet's nodes, by index (their shapes are shape's). The descheduler
// test loads them so LowNodeUtilization finds busyNode over its target
// and idleNode under its threshold; vpaNode runs the VPA test's pods.
const (
	busyNode = iota
	idleNode
	middleNode
	vpaNode
	nodes
)

// shape is node i's: an 8-core 32 GiB machine with 150m and 512 MiB in
// use outside pods (fleet.DefaultShape(0)); busyNode and vpaNode have
// 8 GiB of swap, the others none. We serve a swap key (0 without swap, as
// the kubelet reports it) and, with --kubelet-ephemeral-storage, an
// ephemeral-storage key beside cpu and memory for every node and
// container: the consumers, which read cpu and memory, must pass over
// them.
func shape(i int) fleet.NodeShape {
	s := fleet.DefaultShape(0)
	if i == busyNode || i == vpaNode {
		s.Swap, s.SystemSwap = 8<<30, 192<<20
	}
	return s
}

// env is what every test shares, set up once by TestMain.
type env struct {
	suite *localcluster.Suite
	fleet *fleet.Fleet
	// nodeNames by index.
	nodeNames [nodes]string
	// vpaRecommender and descheduler are the consumers' binaries.
	vpaRecommender, descheduler string
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.Main(m, "e2econsumers", []string{"-race"}, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

// setUp builds the consumers when they are not built yet, starts the fleet
// (webhook authentication on, as real kubelets) and our server, which
// both tests read.
func (e *env) setUp(ctx context.Context) error {
	s := e.suite
	var err error
	if e.vpaRecommender, err = consumerBinary(ctx, s, "vpa-recommender", vpaVersion); err != nil {
		return err
	}
	if e.descheduler, err = consumerBinary(ctx, s, "descheduler", deschedulerVersion); err != nil {
		return err
	}
	ca, err := s.LoadCA(pki.KubeletCA)
	if err != nil {
		return err
	}
	cfg := fleet.Config{Client: s.Client, Nodes: nodes, Prefix: "cns", KubeletCA: ca, AddressBase: addressBase,
		Shape: shape, Authenticate: true, Logf: logf}
	if e.fleet, err = fleet.New(cfg); err != nil {
		return err
	}
	if err := e.fleet.Run(ctx); err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	for i := range nodes {
		e.nodeNames[i] = cfg.NodeName(i)
	}
	if _, _, err := s.StartMetricsServer(ctx, "--metric-resolution="+resolution.String(), "--kubelet-request-timeout=5s", "--kubelet-ephemeral-storage", "-v=2"); err != nil {
		return err
	}
	logf("cluster, %d-node fleet and metrics-server ready in %v; logs in %s/logs", nodes, s.Elapsed(), s.Dir)
	return nil
}

// consumerBinary returns the path of the consumer name at version under
// test/.cache/bin/<name>-<version>/, building it with build-k8s.sh first
// when it is not there.
func consumerBinary(ctx context.Context, s *localcluster.Suite, name, version string) (string, error) {
	bin := filepath.Join(s.Repo, "test/.cache/bin", name+"-"+version, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	script := filepath.Join(s.Repo, "test/tools/build-k8s.sh")
	s.Logf("building %s %s: %s %s", name, version, script, name)
	began := time.Now()
	build := exec.CommandContext(ctx, script, name)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building %s %s (%s %s): %w", name, version, script, name, err)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s %s %s built no %s: %w", script, name, version, bin, err)
	}
	s.Logf("built %s %s in %v", name, version, time.Since(began).Round(time.Second))
	return bin, nil
}

// moduleDir is the folder of module at version in the module cache,
// downloading it if needed (from the wrapper module's folder, so the
// go.sum there vouches for it).
func moduleDir(ctx context.Context, wrapper, module, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = filepath.Join(e.suite.Repo, "test/tools", wrapper)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no folder: %s", module, version, info.Error)
	}
	return info.Dir, nil
}

// createNamespace creates ns and waits for its default ServiceAccount,
// which pods need and the controller manager makes.
func createNamespace(ctx context.Context, ns string) error {
	c := e.suite.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return localcluster.Poll(ctx, "the default ServiceAccount of "+ns, time.Second, time.Minute, func() error {
		_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// applyFile applies the manifests in path as the admin, in namespace ns
// (for those of them that have a namespace and name none).
func applyFile(ctx context.Context, path, ns string) error {
	if _, err := e.suite.Cluster.Kubectl(ctx, "apply", "--server-side", "-n", ns, "-f", path); err != nil {
		return fmt.Errorf("applying %s: %w", path, err)
	}
	return nil
}

// serviceAccountKubeconfig writes a kubeconfig for the ServiceAccount
// ns/name (a one-hour token from the TokenRequest API) into the suite's
// folder and returns its path.
func serviceAccountKubeconfig(ctx context.Context, ns, name string) (string, error) {
	hour := int64(3600)
	tr, err := e.suite.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("a token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	path := filepath.Join(e.suite.Dir, name+".kubeconfig")
	c := e.suite.Cluster
	if err := localcluster.WriteKubeconfig(path, c.APIServer, c.PKI.Path(pki.ClusterCA+".crt"), "", "", tr.Status.Token); err != nil {
		return "", err
	}
	return path, nil
}
