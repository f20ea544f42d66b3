package main

import (
	"strings"
	"testing"
)

// TestNextStepsArePasteable checks that what the playground prints names
// this run's port, paths and the helm it built, so the commands work when
// pasted into another shell.
func TestNextStepsArePasteable(t *testing.T) {
	out := nextSteps("/pg/admin.kubeconfig", "/repo/test/.cache/bin/v1.37.2", "/repo/test/.cache/bin/helm-v3.22.0",
		"/repo/_output/metrics-server", "/pg/pki/kubelet-ca.crt", 40123, "/pg")
	for _, want := range []string{
		"export KUBECONFIG=/pg/admin.kubeconfig\n",
		"export PATH=/repo/test/.cache/bin/v1.37.2:/repo/test/.cache/bin/helm-v3.22.0:$PATH",
		"/repo/_output/metrics-server doctor --server-args ",
		"--kubelet-certificate-authority /pg/pki/kubelet-ca.crt\n",
		"/repo/_output/metrics-server status --server https://127.0.0.1:40123 --tls-server-name metrics-server.kube-system.svc\n",
		"Logs: /pg/logs\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("next steps lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PORT") {
		t.Errorf("next steps still hold a placeholder:\n%s", out)
	}
}
