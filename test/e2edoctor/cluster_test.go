package e2edoctor

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

const (
	v1beta1 = "v1beta1.metrics.k8s.io"
	v1      = "v1.metrics.k8s.io"
	sa      = "serviceaccount/kube-system/metrics-server"
	authCM  = "configmap/kube-system/extension-apiserver-authentication"
)

// want is one finding expected in full.
type want struct {
	check, target   string
	status          doctor.Status
	message, fixVal string
}

// expect fails t unless r has a finding of w's check and target with w's
// status, message and fix, to the letter.
func expect(t *testing.T, r doctorRun, w want) {
	t.Helper()
	fs := r.find(w.check, w.target)
	for _, f := range fs {
		if f.Status == w.status && f.Message == w.message && f.Fix == w.fixVal {
			return
		}
	}
	t.Errorf("no %s %s finding %s:\n  message %q\n  fix     %q\nin %v", w.check, w.target, w.status, w.message, w.fixVal, r)
}

func hasCheck(check, target string, status doctor.Status) func(doctorRun) bool {
	return func(r doctorRun) bool {
		for _, f := range r.find(check, target) {
			if f.Status == status {
				return true
			}
		}
		return false
	}
}

// TestHealthyClusterAllOK: on the cluster as set up, every check is ok
// and the doctor exits 0.
func TestHealthyClusterAllOK(t *testing.T) {
	r := runDoctor(t)
	if r.code != 0 {
		t.Errorf("exit status %d on the healthy cluster, want 0", r.code)
	}
	for _, f := range r.findings {
		if f.Status != doctor.StatusOK {
			t.Errorf("%s %s is %s on the healthy cluster: %s (fix: %s; detail: %s)", f.Check, f.Target, f.Status, f.Message, f.Fix, f.Detail)
		}
	}
	for _, c := range []struct{ check, target string }{
		{"apiservice", v1beta1}, {"apiservice", v1}, {"aggregation-layer", authCM}, {"rbac", sa},
	} {
		if len(r.find(c.check, c.target)) == 0 {
			t.Errorf("no %s finding for %s in %v", c.check, c.target, r)
		}
	}
	nodeChecks := map[string]bool{}
	for _, f := range r.findings {
		if strings.HasPrefix(f.Check, "node-") {
			nodeChecks[f.Check] = true
		}
	}
	for _, c := range []string{"node-tls", "node-authz", "node-endpoint"} {
		if !nodeChecks[c] {
			t.Errorf("no %s finding: the per-node checks did not run (%v)", c, r)
		}
	}
	// The table, for the log, ends with the count.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	table, err := exec.CommandContext(ctx, e.binary, "doctor", "--kubeconfig", e.cluster.AdminKubeconfig,
		"--kubelet-certificate-authority", e.kubeletCA, "--server-args", strings.Join(serverKubeletArgs, " ")).Output()
	if err != nil {
		t.Errorf("table run: %v", err)
	}
	t.Logf("metrics-server doctor on the healthy cluster:\n%s", table)
	if want := fmt.Sprintf("\n%d ok, 0 warn, 0 fail\n", len(r.findings)); !strings.HasSuffix(string(table), want) {
		t.Errorf("table does not end with %q", want)
	}
	if n := len(r.find("rbac", sa)); n != 4 {
		t.Errorf("%d rbac findings, want 4 (server ClusterRole, auth-delegator, authentication reader, Node events)", n)
	}
	for _, f := range r.find("aggregation-layer", authCM) {
		if !strings.Contains(f.Message, "allowed names [front-proxy-client] (published by the kube-apiserver); user headers [X-Remote-User], group headers [X-Remote-Group]") {
			t.Errorf("aggregation-layer says %q, want the kube-apiserver's allowed name and headers", f.Message)
		}
	}
}

// TestWrongAllowedName: our server restarted with a request-header CA and
// an allowed name that is not the kube-apiserver's proxy client's CN
// refuses the kube-apiserver; the doctor names the proxy client
// certificate and the allowed names.
func TestWrongAllowedName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { restoreServer(t) })
	e.cluster.StopMetricsServer()
	if err := e.cluster.KeepMetricsServerLog(); err != nil {
		t.Fatal(err)
	}
	broken := e.server
	broken.Args = append(append([]string{}, e.server.Args...),
		"--requestheader-client-ca-file="+e.cluster.PKI.Path(pki.FrontProxyCA+".crt"),
		"--requestheader-allowed-names=somebody-else")
	if _, err := e.cluster.StartMetricsServerBroken(ctx, broken); err != nil {
		t.Fatal(err)
	}
	r := waitDoctor(t, 2*time.Minute, func(r doctorRun) bool {
		return hasCheck("aggregation-layer", "kube-apiserver proxy client certificate", doctor.StatusFail)(r)
	})
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	expect(t, r, want{"apiservice", v1beta1, doctor.StatusFail,
		"metrics-server refused the kube-apiserver's request with 401: it did not accept the kube-apiserver's proxy client certificate as a front proxy (the aggregation layer's request-header authentication)",
		"see the aggregation-layer finding: the CN of the kube-apiserver's --proxy-client-cert-file must be in --requestheader-allowed-names and the certificate signed by --requestheader-client-ca-file"})
	expect(t, r, want{"aggregation-layer", "kube-apiserver proxy client certificate", doctor.StatusFail,
		"metrics-server answered the kube-apiserver's proxied discovery with 401: the CN of the kube-apiserver's proxy client certificate is probably not in the kube-apiserver's --requestheader-allowed-names [front-proxy-client]",
		"make the CN of the kube-apiserver's --proxy-client-cert-file (openssl x509 -noout -subject -in <file>) one of the kube-apiserver's --requestheader-allowed-names, and give metrics-server no --requestheader-allowed-names of its own unless it lists that CN"})

	// Told the server's flags (as its Deployment would give them), the
	// doctor names the server's own allowed names and the contradiction.
	own := append(append([]string{}, serverKubeletArgs...), broken.Args[len(broken.Args)-2:]...)
	r = runDoctor(t, "--server-args", strings.Join(own, " "))
	if r.code != 1 {
		t.Errorf("exit status %d with the server's flags, want 1", r.code)
	}
	expect(t, r, want{"aggregation-layer", authCM, doctor.StatusFail,
		"metrics-server's --requestheader-allowed-names=somebody-else replaces the kube-apiserver's [front-proxy-client] and shares no name with it: the kube-apiserver's proxy client certificate is refused",
		"drop --requestheader-client-ca-file and --requestheader-allowed-names from metrics-server's args (it then reads configmap/kube-system/extension-apiserver-authentication), or list the proxy client certificate's CN in them"})
	expect(t, r, want{"aggregation-layer", "kube-apiserver proxy client certificate", doctor.StatusFail,
		"metrics-server answered the kube-apiserver's proxied discovery with 401: the CN of the kube-apiserver's proxy client certificate is probably not in metrics-server's own --requestheader-allowed-names [somebody-else]",
		"make the CN of the kube-apiserver's --proxy-client-cert-file (openssl x509 -noout -subject -in <file>) one of the kube-apiserver's --requestheader-allowed-names, and give metrics-server no --requestheader-allowed-names of its own unless it lists that CN"})
}

// TestMissingRBAC: without the ClusterRoleBinding system:metrics-server
// the server may not list nodes and pods nor read the kubelets; the doctor
// names each permission and the binding, and its fix, run as printed,
// restores it.
func TestMissingRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	binding, err := e.cluster.Kubectl(ctx, "get", "clusterrolebinding", "system:metrics-server", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if restored {
			return
		}
		if _, err := e.cluster.KubectlAs(context.Background(), e.cluster.AdminKubeconfig, []byte(binding), "apply", "-f", "-"); err != nil {
			t.Errorf("restoring the binding: %v", err)
		}
	})
	if _, err := e.cluster.Kubectl(ctx, "delete", "clusterrolebinding", "system:metrics-server"); err != nil {
		t.Fatal(err)
	}
	fix := "kubectl create clusterrolebinding system:metrics-server --clusterrole=system:metrics-server --serviceaccount=kube-system:metrics-server (the ClusterRole and binding are in manifests/base/rbac.yaml)"
	r := waitDoctor(t, time.Minute, hasCheck("rbac", sa, doctor.StatusFail))
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	expect(t, r, want{"rbac", sa, doctor.StatusFail,
		"service account kube-system/metrics-server may not list nodes, watch nodes, list pods, watch pods, get nodes/metrics, get nodes/stats (ClusterRole system:metrics-server (nodes, pods, nodes/metrics, nodes/stats))",
		fix})
	// The Node events are not this binding's: they come from the Role
	// default/metrics-server-events, so no events warning.
	for _, f := range r.find("rbac", sa) {
		if f.Status != doctor.StatusFail && !strings.Contains(f.Message, "has ") {
			t.Errorf("other rbac finding %+v", f)
		}
	}

	// The fix, as printed, without its parenthesis.
	command, _, _ := strings.Cut(fix, " (")
	args := strings.Fields(command)
	if _, err := e.cluster.Kubectl(ctx, args[1:]...); err != nil {
		t.Fatalf("running the fix %q: %v", command, err)
	}
	restored = true
	r = waitDoctor(t, time.Minute, func(r doctorRun) bool { return !hasCheck("rbac", sa, doctor.StatusFail)(r) })
	for _, f := range r.find("rbac", sa) {
		if f.Status != doctor.StatusOK {
			t.Errorf("after the fix: %s %s", f.Status, f.Message)
		}
	}
}

// TestStoppedServer: with our server stopped the kube-apiserver's
// connection is refused; the doctor says so for both APIServices.
func TestStoppedServer(t *testing.T) {
	t.Cleanup(func() { restoreServer(t) })
	e.cluster.StopMetricsServer()
	message := "the kube-apiserver's connection to service kube-system/metrics-server was refused: nothing listens there; the server is not running, or its --secure-port differs from the Service's targetPort"
	fix := "start metrics-server, or make the Service's targetPort its --secure-port: kubectl -n kube-system get pods,endpointslices -l k8s-app=metrics-server; kubectl -n kube-system logs -l k8s-app=metrics-server"
	r := waitDoctor(t, 2*time.Minute, func(r doctorRun) bool {
		return hasCheck("apiservice", v1beta1, doctor.StatusFail)(r) && hasCheck("apiservice", v1, doctor.StatusFail)(r)
	})
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	expect(t, r, want{"apiservice", v1beta1, doctor.StatusFail, message, fix})
	expect(t, r, want{"apiservice", v1, doctor.StatusFail, message, fix})

	// The table people read says the same, and exits the same.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.binary, "doctor", "--kubeconfig", e.cluster.AdminKubeconfig, "--skip-nodes")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("table run: %v, want exit status 1", err)
	}
	table := string(out)
	for _, line := range []string{
		"apiservice         v1beta1.metrics.k8s.io",
		"FAIL    " + message,
		"fix: " + fix,
		"detail: Available=False reason=FailedDiscoveryCheck: failing or missing response from https://localhost:",
	} {
		if !strings.Contains(table, line) {
			t.Errorf("table lacks %q:\n%s", line, table)
		}
	}
}
