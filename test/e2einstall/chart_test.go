package e2einstall

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// TestChartInstallVerified installs charts/metrics-server and checks that
// kubectl top is served through it with the kube-apiserver verifying our
// serving certificate: no rendered APIService skips verification, and each
// installed one is Available with a caBundle.
//
// With the defaults (tls.type selfSigned) the chart's APIServices carry no
// caBundle: the server's bootstrap fills the empty Secret
// metrics-server-tls-bootstrap the chart ships (its RBAC allows get and
// update of that Secret, no create) and writes its CA into both. With
// tls.type existingSecret the server serves a Secret issued here by the
// local cluster's CA, and apiService.caBundle is that CA; then a caBundle
// of another CA makes the APIService unavailable with an x509 error, which
// shows the kube-apiserver really verifies.
func TestChartInstallVerified(t *testing.T) {
	t.Run("selfSigned", func(t *testing.T) {
		rendered := renderChart(t)
		checkRenderedVerifies(t, rendered, false)
		in := install(t, "chart-self-signed", rendered)
		startServer(t, in, localcluster.StartOptions{})
		waitAvailable(t, in)

		secret, err := e.client.CoreV1().Secrets("kube-system").Get(context.Background(), "metrics-server-tls-bootstrap", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the bootstrap's Secret: %v", err)
		}
		if secret.Type != corev1.SecretTypeOpaque || len(secret.Data["ca.crt"]) == 0 || len(secret.Data["tls.crt"]) == 0 || len(secret.Data["tls.key"]) == 0 {
			t.Fatalf("Secret kube-system/metrics-server-tls-bootstrap: type %s, keys %v; want the Opaque shell the chart ships, filled with tls.crt, tls.key and ca.crt", secret.Type, secretKeys(secret.Data))
		}
		checkInstalledVerifies(t, in, secret.Data["ca.crt"])
		waitTop(t)
	})

	t.Run("existingSecret", func(t *testing.T) {
		ctx := context.Background()
		ca, err := pki.LoadCA(e.cluster.PKI.Path(pki.ClusterCA+".crt"), e.cluster.PKI.Path(pki.ClusterCA+".key"))
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc", "metrics-server.kube-system.svc.cluster.local"}
		serving, err := ca.Issue(pki.Request{CommonName: "metrics-server.kube-system.svc", DNSNames: names, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		key, err := pki.KeyPEM(serving.Key)
		if err != nil {
			t.Fatal(err)
		}
		const secretName = "metrics-server-serving"
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: "kube-system"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": pki.CertPEM(serving.Cert), "tls.key": key},
		}
		if _, err := e.client.CoreV1().Secrets("kube-system").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.client.CoreV1().Secrets("kube-system").Delete(context.Background(), secretName, metav1.DeleteOptions{}); err != nil {
				t.Errorf("deleting Secret %s: %v", secretName, err)
			}
		})

		caPEM := pki.CertPEM(ca.Cert)
		caFile := filepath.Join(t.TempDir(), "ca.crt")
		if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		rendered := renderChart(t, "--set", "tls.type=existingSecret", "--set", "tls.existingSecret.name="+secretName, "--set-file", "apiService.caBundle="+caFile)
		checkRenderedVerifies(t, rendered, true)
		in := install(t, "chart-existing-secret", rendered)
		r := startServer(t, in, localcluster.StartOptions{})
		// The server serves the Secret's certificate, from where its volume
		// is mounted, and bootstraps none of its own.
		if served, err := os.ReadFile(chartArg(r.Args, "--tls-cert-file")); err != nil || !bytes.Equal(served, secret.Data["tls.crt"]) || chartArg(r.Args, "--tls-bootstrap-secret") != "" {
			t.Errorf("the server runs with %v (--tls-cert-file: %v), want the mounted Secret's tls.crt and no bootstrap", r.Args, err)
		}
		waitAvailable(t, in)
		checkInstalledVerifies(t, in, caPEM)
		waitTop(t)

		// A caBundle of another CA: the kube-apiserver refuses our
		// certificate.
		other, err := pki.NewCA("not-the-signer")
		if err != nil {
			t.Fatal(err)
		}
		name := in.APIServices[0]
		patch := fmt.Sprintf(`{"spec":{"caBundle":%q}}`, base64.StdEncoding.EncodeToString(pki.CertPEM(other.Cert)))
		kubectl(t, "patch", "apiservice", name, "--type=merge", "-p", patch)
		waitFor(t, time.Minute, func() error {
			status, message, err := e.cluster.APIServiceAvailable(ctx, name)
			if err != nil {
				return err
			}
			if status != "False" || !strings.Contains(message, "x509") {
				return fmt.Errorf("APIService %s with a caBundle of another CA: Available=%q (%s), want False for an x509 error", name, status, message)
			}
			return nil
		})
	})
}

// checkRenderedVerifies checks that no rendered APIService skips TLS
// verification, and that each has a caBundle exactly when withCABundle.
func checkRenderedVerifies(t *testing.T, rendered []byte, withCABundle bool) {
	t.Helper()
	objs, err := localcluster.Decode(rendered)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		if o.GetKind() != "APIService" {
			continue
		}
		n++
		skip, _, _ := unstructured.NestedBool(o.Object, "spec", "insecureSkipTLSVerify")
		bundle, _, _ := unstructured.NestedString(o.Object, "spec", "caBundle")
		if skip || (bundle != "") != withCABundle {
			t.Errorf("rendered APIService %s: insecureSkipTLSVerify %v, caBundle %q; want verified, with a caBundle: %v", o.GetName(), skip, bundle, withCABundle)
		}
	}
	if n != 2 {
		t.Errorf("the chart renders %d APIServices, want v1 and v1beta1", n)
	}
}

// checkInstalledVerifies checks that every installed APIService verifies
// the server with caPEM.
func checkInstalledVerifies(t *testing.T, in *localcluster.Installation, caPEM []byte) {
	t.Helper()
	if len(in.APIServices) != 2 {
		t.Errorf("installed APIServices %v, want v1 and v1beta1", in.APIServices)
	}
	for _, name := range in.APIServices {
		a := getAPIService(t, name)
		if a.Spec.InsecureSkipTLSVerify {
			t.Errorf("APIService %s: insecureSkipTLSVerify", name)
		}
		if !bytes.Equal(a.Spec.CABundle, caPEM) {
			t.Errorf("APIService %s: caBundle\n%s\nwant\n%s", name, a.Spec.CABundle, caPEM)
		}
	}
}

// chartArg returns the value of --flag=value in args, or "".
func chartArg(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func secretKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
