// Package e2eswap runs the metrics server against a fleet whose kubelets
// report swap three ways (a node with swap, a node without, a kubelet
// reporting no swap stats) and filesystem stats in the full summary, and
// checks through the kubectl we build (1.37: top --show-swap) and the
// kube-apiserver's aggregation layer what users see of swap and
// ephemeral-storage, with the server on each kubelet endpoint.
//
// Its HPA tests run the HPA of kube-controller-manager 1.37 on
// Deployments of fleet pods: on ephemeral storage, on pod-level requests,
// and across a container restart, there beside upstream v0.9.0.
//
// It has its own control plane, fleet (127.50.x.y) and server process,
// apart from test/e2e's, and starts the server once per test case with
// the flags that case is about.
package e2eswap

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// addressBase keeps this fleet's kubelets (127.50.x.y) apart from the
// other packages' (e2e 1, playground 3, benchmark 7, e2efaults 40 ...).
const addressBase = 50

// The server's timing: the shortest resolution it accepts.
const (
	resolution = 10 * time.Second
	timeout    = 5 * time.Second
)

// The nodes, by index: with swap, without, and a kubelet reporting no
// swap stats.
const (
	swapNode = iota
	noSwapNode
	noStatsNode
	nodes
)

// Node swap: 8 GiB, 192 MiB of it swapped out by the system.
const (
	swapCapacity = 8 << 30
	systemSwap   = 192 << 20
)

// The two pods each node runs (the fleet's usage annotation is per pod,
// the same for each of its containers): big-<i>, whose container big
// swaps 256 MiB (where the node has swap) and holds 100 MiB of ephemeral
// storage, and small-<i>, whose container small swaps nothing and holds
// 20 MiB.
const (
	namespace  = "swap"
	bigUsage   = "cpu=200m,memory=300Mi,swap=256Mi,ephemeral-storage=100Mi"
	smallUsage = "cpu=50m,memory=40Mi,ephemeral-storage=20Mi"
	bigSwap    = 256 << 20
	bigEph     = 100 << 20
	smallEph   = 20 << 20
)

// env is what every test shares, set up once by TestMain.
type env struct {
	suite *localcluster.Suite
	fleet *fleet.Fleet
	// nodeNames by index; big-<i> and small-<i> run on nodeNames[i].
	nodeNames [nodes]string
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.Main(m, "e2eswap", []string{"-race"}, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

func shape(i int) fleet.NodeShape {
	s := fleet.DefaultShape(0) // a small machine, without swap
	switch i {
	case swapNode:
		s.Swap, s.SystemSwap = swapCapacity, systemSwap
	case noStatsNode:
		s.NoSwapStats = true
	}
	return s
}

// setUp starts the fleet (webhook authentication on, as real kubelets)
// and one pod bound to each node; each test starts the server itself.
func (e *env) setUp(ctx context.Context) error {
	s := e.suite
	ca, err := s.LoadCA(pki.KubeletCA)
	if err != nil {
		return err
	}
	cfg := fleet.Config{Client: s.Client, Nodes: nodes, Prefix: "swp", KubeletCA: ca, AddressBase: addressBase,
		Shape: shape, Authenticate: true, Logf: logf}
	if e.fleet, err = fleet.New(cfg); err != nil {
		return err
	}
	if err := e.fleet.Run(ctx); err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods need the namespace's default ServiceAccount, which the
	// controller manager makes.
	if err := localcluster.Poll(ctx, "the default ServiceAccount", time.Second, time.Minute, func() error {
		_, err := s.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	for i := range nodes {
		e.nodeNames[i] = cfg.NodeName(i)
		for _, c := range []struct{ name, usage string }{{"big", bigUsage}, {"small", smallUsage}} {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", c.name, i), Namespace: namespace,
					Annotations: map[string]string{fleet.UsageAnnotation: c.usage}},
				Spec: corev1.PodSpec{NodeName: e.nodeNames[i], Containers: []corev1.Container{{Name: c.name, Image: "registry.invalid/" + c.name + ":1"}}},
			}
			if _, err := s.Client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating pod %s: %w", pod.Name, err)
			}
		}
	}
	if err := localcluster.Poll(ctx, "the pods running", time.Second, 2*time.Minute, func() error {
		list, err := s.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running != 2*nodes {
			return fmt.Errorf("%d of %d pods running", running, 2*nodes)
		}
		return nil
	}); err != nil {
		return err
	}
	logf("cluster, %d-node fleet and pods ready in %v; logs in %s/logs", nodes, s.Elapsed(), s.Dir)
	return nil
}
