package e2edoctor

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/status"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// checkStatusAccess: a ServiceAccount's token without the status reader
// role gets the documented 403 and the binding to create, one bound to
// manifests/components/status-reader's ClusterRole gets the list, and a
// token nobody issued gets the 401.
func checkStatusAccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const role = "system:metrics-server-status-reader"
	if _, err := e.cluster.Kubectl(ctx, "get", "clusterrole", role); err == nil {
		t.Fatalf("ClusterRole %s exists before the component is applied: the 403 below would prove nothing", role)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, obj := range [][]string{{"clusterrolebinding", "status-e2e-ops"}, {"clusterrole", role},
			{"serviceaccount", "-n", "default", "status-e2e-nobody"}, {"serviceaccount", "-n", "default", "status-e2e-ops"}} {
			if _, err := e.cluster.Kubectl(ctx, append([]string{"delete", "--ignore-not-found"}, obj...)...); err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	})
	kubeconfigs := map[string]string{}
	for _, sa := range []string{"status-e2e-nobody", "status-e2e-ops"} {
		if _, err := e.cluster.Kubectl(ctx, "create", "serviceaccount", "-n", "default", sa); err != nil {
			t.Fatal(err)
		}
		token, err := e.cluster.Kubectl(ctx, "create", "token", "-n", "default", sa, "--duration", "1h")
		if err != nil {
			t.Fatal(err)
		}
		kubeconfigs[sa] = kubeconfigWithToken(t, sa, strings.TrimSpace(token))
	}
	kubeconfigs["bogus"] = kubeconfigWithToken(t, "bogus", "not-a-token-anybody-issued")

	r := runStatusAs(t, kubeconfigs["status-e2e-nobody"])
	want := fmt.Sprintf("metrics-server at https://127.0.0.1:%d refused you /status (403): bind the ClusterRole %s to your user, e.g. kubectl create clusterrolebinding status-reader --clusterrole=%s", e.port, role, role)
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "system:serviceaccount:default:status-e2e-nobody") {
		t.Errorf("without the role: want exit 1, %q and the user's name: %v", want, r)
	}
	r = runStatusAs(t, kubeconfigs["bogus"])
	if want := "did not accept your credentials (401)"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("an unknown token: want exit 1 and %q: %v", want, r)
	}

	if _, err := e.cluster.Kubectl(ctx, "apply", "-f", filepath.Join(e.repo, "manifests/components/status-reader/status-reader.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cluster.Kubectl(ctx, "create", "clusterrolebinding", "status-e2e-ops", "--clusterrole="+role,
		"--serviceaccount=default:status-e2e-ops"); err != nil {
		t.Fatal(err)
	}
	// RBAC reaches the kube-apiserver's authorizer through its informers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = runStatusAs(t, kubeconfigs["status-e2e-ops"], "-o", "json")
		if r.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	var list status.NodeList
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || list.Total != nodes {
		t.Errorf("bound to %s: want exit 0 and %d nodes: %v", role, nodes, r)
	}
}

// kubeconfigWithToken writes a kubeconfig for the kube-apiserver with a
// bearer token.
func kubeconfigWithToken(t *testing.T, name, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := localcluster.WriteKubeconfig(path, e.cluster.APIServer, e.cluster.PKI.Path(pki.ClusterCA+".crt"), "", "", token); err != nil {
		t.Fatal(err)
	}
	return path
}
