package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// Suite is what an end-to-end test package sets up once in its TestMain:
// a temporary folder, our binary built into it, and a running control
// plane whose files and logs live in it. Main makes it and hands it to the
// package's setUp, which adds what the package needs (a fleet, LoadCA,
// StartMetricsServer).
type Suite struct {
	// Name is the package's name ("e2edoctor"): the prefix of every
	// progress line and of the temporary folder.
	Name string
	// Dir is the suite's temporary folder; the cluster's logs are in
	// Dir/logs.
	Dir string
	// Repo is the repository's root, absolute (two folders above the
	// package, where go test runs it).
	Repo string
	// Binary is metrics-server as BuildMetricsServer built it.
	Binary string
	// Cluster and Client (the admin's, see Cluster.Client) are set by
	// StartCluster.
	Cluster *Cluster
	Client  kubernetes.Interface

	began time.Time
}

// Main runs the tests of m in a new Suite named name and returns the exit
// status for os.Exit. It makes the folder (os.TempDir()/kubemetrics-<name>-*),
// builds our binary with the go build flags buildFlags (such as "-race";
// see BuildMetricsServer), starts the control plane (StartCluster) and
// calls setUp with a context that ends when the tests have run, before the
// cluster stops (a fleet started with it talks to the kube-apiserver).
// When a step fails, Main prints its error, stops the cluster if one was
// started and returns 1 without running a test. The folder is removed
// unless a step or a test failed: then its logs are kept and their path is
// printed.
func Main(m *testing.M, name string, buildFlags []string, setUp func(ctx context.Context, s *Suite) error) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "kubemetrics-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := &Suite{Name: name, Dir: dir, began: time.Now()}
	keep := false
	defer func() {
		if !keep {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := s.setUp(ctx, buildFlags, setUp); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		fmt.Fprintf(os.Stderr, "%s: logs kept in %s/logs\n", name, dir)
		keep = true
		if s.Cluster != nil {
			s.Cluster.Stop()
		}
		return 1
	}
	defer func() {
		cancel() // the fleet first: it talks to the apiserver
		s.Cluster.Stop()
	}()
	code := m.Run()
	if code != 0 {
		keep = true
		s.Logf("tests failed: logs kept in %s/logs", dir)
	}
	return code
}

// setUp is Main's part before the tests: the binary, the control plane,
// then the package's own setUp.
func (s *Suite) setUp(ctx context.Context, buildFlags []string, pkgSetUp func(ctx context.Context, s *Suite) error) error {
	var err error
	if s.Repo, err = filepath.Abs("../.."); err != nil {
		return err
	}
	if err := s.BuildMetricsServer(ctx, buildFlags...); err != nil {
		return err
	}
	if err := s.StartCluster(ctx); err != nil {
		return err
	}
	return pkgSetUp(ctx, s)
}

// Logf prints a progress line on standard output: the suite's name, the
// local time of day and the message.
func (s *Suite) Logf(format string, a ...any) {
	fmt.Printf("%s [%s] %s\n", s.Name, time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// Elapsed is the time since Main began setting the suite up, rounded to
// the second, for the "ready in" line.
func (s *Suite) Elapsed() time.Duration {
	return time.Since(s.began).Round(time.Second)
}

// BuildMetricsServer (run by Main) builds ./cmd/metrics-server of Repo into
// Dir/metrics-server with the extra go build flags (such as "-race"),
// sets Binary and logs how long it took. The compiler's output goes to
// standard output and error.
func (s *Suite) BuildMetricsServer(ctx context.Context, flags ...string) error {
	began := time.Now()
	binary := filepath.Join(s.Dir, "metrics-server")
	args := append(append([]string{"build"}, flags...), "-o", binary, "./cmd/metrics-server")
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = s.Repo
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building metrics-server: %w", err)
	}
	s.Binary = binary
	s.Logf("built metrics-server in %v", time.Since(began).Round(time.Second))
	return nil
}

// StartCluster (run by Main) starts the control plane from the pinned binaries
// (Repo/test/.cache/bin/v1.37.2, built by make k8s) in Dir, logging
// progress with Logf, and sets Cluster and Client. On error Cluster may be
// set and running; Main stops it.
func (s *Suite) StartCluster(ctx context.Context) error {
	var err error
	s.Cluster, err = Start(ctx, Options{
		BinDir: filepath.Join(s.Repo, "test/.cache/bin/v1.37.2"),
		Dir:    s.Dir,
		Logf:   s.Logf,
	})
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	s.Client, err = s.Cluster.Client()
	return err
}

// LoadCA loads the cluster's CA named name (pki.KubeletCA, pki.ClusterCA)
// from its PKI folder, to sign a fleet's kubelet serving certificates.
func (s *Suite) LoadCA(name string) (*pki.CA, error) {
	return pki.LoadCA(s.Cluster.PKI.Path(name+".crt"), s.Cluster.PKI.Path(name+".key"))
}

// StartMetricsServer runs Binary with the local overlay's RBAC and
// APIServices (manifests/overlays/local) and the extra flags args, and
// waits until both APIServices are Available (see
// Cluster.StartMetricsServer). It returns how the server runs, to start
// it again the same way, and its secure port.
func (s *Suite) StartMetricsServer(ctx context.Context, args ...string) (MetricsServer, int, error) {
	ms := MetricsServer{
		Binary:    s.Binary,
		Manifests: filepath.Join(s.Repo, "manifests/overlays/local"),
		Args:      args,
	}
	port, err := s.Cluster.StartMetricsServer(ctx, ms)
	if err != nil {
		return ms, 0, fmt.Errorf("starting metrics-server: %w", err)
	}
	return ms, port, nil
}
