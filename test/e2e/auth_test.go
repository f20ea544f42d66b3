package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// userKubeconfig writes a kubeconfig for a user with a client certificate
// signed by the cluster CA.
func userKubeconfig(t *testing.T, user string) string {
	t.Helper()
	ca, err := pki.LoadCA(cluster.PKI.Path(pki.ClusterCA+".crt"), cluster.PKI.Path(pki.ClusterCA+".key"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(pki.Request{CommonName: user, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pki.WritePair(dir, user, kp.Cert, kp.Key); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(dir, user+".kubeconfig")
	if err := localcluster.WriteKubeconfig(kc, cluster.APIServer, cluster.PKI.Path(pki.ClusterCA+".crt"), filepath.Join(dir, user+".crt"), filepath.Join(dir, user+".key"), ""); err != nil {
		t.Fatal(err)
	}
	return kc
}

func TestNoCredentialsIsUnauthorized(t *testing.T) {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(cluster.PKI.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	for _, path := range []string{"/apis/metrics.k8s.io/v1/nodes", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"} {
		resp, err := hc.Get(cluster.APIServer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with no credentials: %s, want 401", path, resp.Status)
		}
	}
}

func TestRBAC(t *testing.T) {
	ctx := context.Background()
	nobody := userKubeconfig(t, "e2e-nobody")
	out, err := cluster.KubectlAs(ctx, nobody, nil, "get", "--raw", "/apis/metrics.k8s.io/v1/nodes")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("user without RBAC read node metrics: %v %s", err, out)
	}

	reader := userKubeconfig(t, "e2e-reader")
	if _, err := cluster.Kubectl(ctx, "create", "clusterrolebinding", "e2e-reader", "--clusterrole=system:aggregated-metrics-reader", "--user=e2e-reader"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/apis/metrics.k8s.io/v1/nodes", "/apis/metrics.k8s.io/v1beta1/pods"} {
		waitFor(t, 30*time.Second, func() error {
			_, err := cluster.KubectlAs(ctx, reader, nil, "get", "--raw", path)
			return err
		})
	}
	if _, err := cluster.KubectlAs(ctx, reader, nil, "get", "--raw", "/api/v1/secrets"); err == nil {
		t.Errorf("the metrics reader role grants more than metrics")
	}
}
