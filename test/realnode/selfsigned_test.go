//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSelfSignedKubelet is upstream's most reported failure, for real: a
// kubelet without serverTLSBootstrap serves a certificate it made itself,
// for its host name only. Our installed server, dialing the node's
// InternalIP and verifying, must name the missing IP SAN and the node;
// `metrics-server doctor` must diagnose it; --kubelet-insecure-tls must
// bring the node back. The kubelet is then bootstrapped again.
func TestSelfSignedKubelet(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	installComponents(ctx, t)
	if _, err := kubectlTop(ctx, "node", "", NodeName, 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	if err := suite.node.StartKubelet(ctx, ServingCertSelfSigned); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := suite.node.StartKubelet(context.Background(), ServingCertBootstrap); err != nil {
			t.Errorf("bootstrapping the kubelet again: %v", err)
		}
	}()
	t.Logf("the kubelet restarted with a self-signed certificate (no IP SAN)")

	// The server's log names the node, its address and the missing SAN.
	const sanError = "doesn't contain any IP SANs"
	var line string
	if err := poll(ctx, "the server's log naming the missing IP SAN", 2*time.Second, 2*time.Minute, func() error {
		// Not kubectl logs: the kube-apiserver cannot verify the kubelet
		// now either ("kubectl logs" fails with the same x509 error).
		logs, err := suite.node.PodLogs("kube-system", "metrics-server-", "metrics-server")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, sanError) && strings.Contains(l, NodeName) && strings.Contains(l, NodeIP) {
				line = l
				return nil
			}
		}
		return fmt.Errorf("no line with %q, %s and %s in %d bytes of log", sanError, NodeName, NodeIP, len(logs))
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("server log: %s", clip(line, 600))
	// Once its requests have failed twice in a row, the node is gone
	// from the API: kubectl top node says so.
	if err := poll(ctx, "kubectl top node failing", 2*time.Second, 90*time.Second, func() error {
		if out, err := kubectl(ctx, "top", "node", NodeName, "--no-headers"); err == nil {
			return fmt.Errorf("kubectl top node still answers %q", strings.TrimSpace(out))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The doctor, run as an operator from this machine.
	doc := exec.CommandContext(ctx, suite.server, "doctor", "--kubeconfig", suite.node.Cluster.AdminKubeconfig, "--timeout", "90s")
	out, err := doc.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("metrics-server doctor (exit %d):\n%s", code, out)
	if code != 1 {
		t.Errorf("doctor exited %d, want 1 (a check failed)", code)
	}
	for _, want := range []string{NodeName, "IP SAN", "serverTLSBootstrap"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor's report does not say %q", want)
		}
	}

	// The test-cluster fix.
	if _, err := kubectl(ctx, "patch", "deployment", "metrics-server", "-n", "kube-system", "--type=json",
		"-p", `[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]`); err != nil {
		t.Fatal(err)
	}
	checkInstalled(ctx, t, "k8s-app=metrics-server")
	tp, err := kubectlTop(ctx, "node", "", NodeName, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("with --kubelet-insecure-tls: kubectl top node %dm %dMi", tp.milli, tp.mib)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
