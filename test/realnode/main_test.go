//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// suite is what TestMain sets up once for every test of the package: one
// control plane and one real node; the tests run one after another on it.
var suite struct {
	// skip is why the suite cannot run on this machine ("" when it can).
	skip string
	node *Node
	// dir holds the node, the cluster, the images and the logs.
	dir string
	// repo is the repository's root; bin the pinned Kubernetes binaries.
	repo, bin string
	// helm is the helm binary built by make k8s.
	helm string
	// server is our binary, built for doctor runs from this machine.
	server string
	// image is our server's image reference as manifests/components.yaml
	// names it; imageTar its tarball from `make image`.
	image, imageTar string
}

// The suite's own limit: set-up, every test and the tear-down.
const suiteLimit = 40 * time.Minute

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

// runSuite sets the node up, runs the tests and tears it down. With
// REALNODE_REQUIRED=1 (make real-node, CI as root) a machine that cannot
// run it fails; otherwise every test skips and says why.
func runSuite(m *testing.M) int {
	required := os.Getenv("REALNODE_REQUIRED") == "1"
	if why := Missing(); why != "" {
		if required {
			fmt.Fprintf(os.Stderr, "realnode: the suite cannot run here: %s\n", why)
			return 1
		}
		fmt.Printf("realnode: every test skips: %s\n", why)
		suite.skip = why
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), suiteLimit)
	defer cancel()
	logf := func(format string, a ...any) {
		fmt.Printf("realnode %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	began := time.Now()
	ok := false
	var err error
	// Interrupted (Ctrl-C, go test's timeout): undo the node before
	// dying, as deferred calls do not run then.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		logf("%v: stopping the node and the control plane", s)
		if suite.node != nil {
			suite.node.Stop()
		}
		os.Exit(2)
	}()
	defer func() {
		if suite.node != nil {
			suite.node.Stop()
		}
		switch {
		case suite.dir == "":
		case ok:
			if err := os.RemoveAll(suite.dir); err != nil {
				logf("removing %s: %v", suite.dir, err)
			}
		default:
			logf("kept %s for its logs (node: logs/, control plane: cluster/logs/)", suite.dir)
		}
	}()
	if err = setUp(ctx, logf); err != nil {
		fmt.Fprintf(os.Stderr, "realnode: setting up: %v\n", err)
		return 1
	}
	logf("node %s Ready, kube-proxy and the control plane on %s, in %s", NodeName, NodeIP, time.Since(began).Round(time.Second))
	code := m.Run()
	ok = code == 0
	return code
}

func setUp(ctx context.Context, logf func(string, ...any)) error {
	var err error
	if suite.repo, err = filepath.Abs("../.."); err != nil {
		return err
	}
	suite.bin = filepath.Join(suite.repo, "test/.cache/bin/v1.37.2")
	suite.helm = filepath.Join(suite.repo, "test/.cache/bin/helm-v3.22.0/helm")
	for _, b := range []string{filepath.Join(suite.bin, "kubelet"), filepath.Join(suite.bin, "kube-proxy"), suite.helm} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: test/tools/build-k8s.sh kubelet kube-proxy helm (make real-node builds them)", b)
		}
	}
	if suite.dir, err = os.MkdirTemp("/tmp", "kubemetrics-realnode-"); err != nil {
		return err
	}
	logf("working in %s", suite.dir)

	built, err := Build(ctx, suite.repo, suite.dir)
	if err != nil {
		return err
	}
	suite.server, suite.image, suite.imageTar = built.Server, built.Image, built.ImageTar
	logf("make image: %s as %s", suite.imageTar, suite.image)

	suite.node, err = Up(ctx, Options{
		Dir:            filepath.Join(suite.dir, "node"),
		BinDir:         suite.bin,
		WorkloadBinary: built.Workload,
		ImageTars:      []string{suite.imageTar},
		Logf:           logf,
	})
	return err
}

// need skips t when the suite cannot run here (never under
// REALNODE_REQUIRED=1: TestMain fails first).
func need(t *testing.T) {
	t.Helper()
	if suite.skip != "" {
		t.Skipf("real node suite skipped: %s", suite.skip)
	}
}

// kubectl runs the kubectl we built as the cluster's admin.
func kubectl(ctx context.Context, args ...string) (string, error) {
	return suite.node.Cluster.Kubectl(ctx, args...)
}

// kubectlIn is kubectl with stdin.
func kubectlIn(ctx context.Context, stdin string, args ...string) (string, error) {
	return suite.node.Cluster.KubectlAs(ctx, suite.node.Cluster.AdminKubeconfig, []byte(stdin), args...)
}

// helmCmd runs helm as the cluster's admin.
func helmCmd(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, suite.helm, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+suite.node.Cluster.AdminKubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(suite.dir, "helm/cache"), "HELM_CONFIG_HOME="+filepath.Join(suite.dir, "helm/config"),
		"HELM_DATA_HOME="+filepath.Join(suite.dir, "helm/data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// poll is localcluster.Poll.
func poll(ctx context.Context, what string, interval, limit time.Duration, check func() error) error {
	return localcluster.Poll(ctx, what, interval, limit, check)
}
