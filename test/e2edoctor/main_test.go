// Package e2edoctor breaks a local cluster on purpose, one thing at a
// time, and checks that `metrics-server doctor` names the cause and the fix
// of each (issue 11 item 4) and exits 1, and that it exits 0 with every
// check ok on the healthy cluster; and that `metrics-server status` and
// the Node events name a node whose scrapes fail (issue 11 item 5).
//
// It has its own control plane, fleet and server process: its nodes listen
// on 127.42.x.y, its ports are picked free and its files live in their own
// temporary folder, so it runs beside test/e2e, test/e2efaults and
// test/e2einstall. Tests run one after another and leave the cluster
// healthy when they end, but for TestStatusPodReason and
// TestNodeEventsOnScrapeFailure, which run beside each other after all
// others (each breaks a node of its own and waits for scrape cycles).
package e2edoctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// addressBase keeps this fleet's kubelets (127.42.x.y) apart from test/e2e's
// (127.1), the playground's (127.3), the benchmark's (127.5),
// e2efaults' (127.40) and e2einstall's (127.41).
const addressBase = 42

// nodes is the size of the fleet: enough for per-node breakages to leave
// healthy nodes beside them.
const nodes = 4

// env is what every test shares, set up once by TestMain.
type env struct {
	suite   *localcluster.Suite
	repo    string
	binary  string
	cluster *localcluster.Cluster
	fleet   *fleet.Fleet
	client  kubernetes.Interface
	// server is how the healthy server runs; port is its secure port.
	server localcluster.MetricsServer
	port   int
	// kubeletCA is the file of the CA that signs the fleet's serving
	// certificates.
	kubeletCA string
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.Main(m, "e2edoctor", nil, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s, repo: s.Repo}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

// setUp starts, beside the control plane localcluster.Main started (and
// our binary, server and doctor in one, that it built), a fleet whose
// kubelets check tokens as webhook-authorizing kubelets do, and our server
// with a ServiceAccount token.
func (e *env) setUp(ctx context.Context) error {
	s := e.suite
	e.binary, e.cluster, e.client = s.Binary, s.Cluster, s.Client
	e.kubeletCA = e.cluster.PKI.Path(pki.KubeletCA + ".crt")
	ca, err := s.LoadCA(pki.KubeletCA)
	if err != nil {
		return err
	}
	e.fleet, err = fleet.New(fleet.Config{Client: e.client, Nodes: nodes, Prefix: "doc", KubeletCA: ca,
		AddressBase: addressBase, Authenticate: true, Logf: logf})
	if err != nil {
		return err
	}
	if err := e.fleet.Run(ctx); err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	if e.server, e.port, err = s.StartMetricsServer(ctx, "--metric-resolution=15s", "-v=2"); err != nil {
		return err
	}
	logf("cluster, %d-node fleet and server ready in %v; logs in %s/logs", nodes, s.Elapsed(), s.Dir)
	return nil
}

// doctorRun is one run of `metrics-server doctor -o json`.
type doctorRun struct {
	code     int
	findings []doctor.Finding
	stderr   string
}

// find returns the findings of check on target.
func (r doctorRun) find(check, target string) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range r.findings {
		if f.Check == check && f.Target == target {
			out = append(out, f)
		}
	}
	return out
}

// String lists the findings, one a line, for failure messages.
func (r doctorRun) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "exit %d", r.code)
	for _, f := range r.findings {
		fmt.Fprintf(&b, "\n  %s %s %s: %s | fix: %s | detail: %s", f.Check, f.Target, f.Status, f.Message, f.Fix, f.Detail)
	}
	if r.stderr != "" {
		fmt.Fprintf(&b, "\n  stderr: %s", r.stderr)
	}
	return b.String()
}

// serverKubeletArgs are the kubelet flags localcluster gives our server,
// which runs outside the cluster (no Deployment to read them from).
var serverKubeletArgs = []string{"--kubelet-use-node-status-port", "--kubelet-preferred-address-types=InternalIP"}

// runDoctor runs the doctor as an operator would, with the admin's
// kubeconfig, the kubelet CA and the server's kubelet flags
// (--server-args; a later --server-args in extra replaces them), plus extra
// flags, within a minute.
func runDoctor(t *testing.T, extra ...string) doctorRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"doctor", "--kubeconfig", e.cluster.AdminKubeconfig, "-o", "json", "--timeout", "60s",
		"--kubelet-certificate-authority", e.kubeletCA, "--server-args", strings.Join(serverKubeletArgs, " ")}, extra...)
	cmd := exec.CommandContext(ctx, e.binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := doctorRun{stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %s %v: %v", e.binary, args, err)
	}
	var parsed struct {
		Findings []doctor.Finding `json:"findings"`
		Failed   bool             `json:"failed"`
	}
	if err := json.Unmarshal(out.Bytes(), &parsed); err != nil {
		t.Fatalf("doctor %v printed no JSON (exit %d): %v\nstdout: %s\nstderr: %s", args, r.code, err, out.String(), errb.String())
	}
	r.findings = parsed.Findings
	if parsed.Failed != (r.code == 1) {
		t.Errorf("doctor says failed=%v but exits %d", parsed.Failed, r.code)
	}
	return r
}

// waitDoctor runs the doctor every 3 s until until accepts a run, for at
// most limit (the kube-apiserver re-checks an APIService every 30 s), and
// returns the last run.
func waitDoctor(t *testing.T, limit time.Duration, until func(doctorRun) bool, extra ...string) doctorRun {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := runDoctor(t, extra...)
		if until(r) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(3 * time.Second)
	}
}

// restoreServer starts the healthy server again (after a stop or a broken
// start) and waits until both APIServices are Available.
func restoreServer(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e.cluster.StopMetricsServer()
	if err := e.cluster.KeepMetricsServerLog(); err != nil {
		t.Error(err)
	}
	if _, err := e.cluster.StartMetricsServer(ctx, e.server); err != nil {
		t.Fatalf("restoring the healthy server: %v", err)
	}
}
