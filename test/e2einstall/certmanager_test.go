package e2einstall

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// TestCertManagerInstallVerified installs manifests/overlays/cert-manager
// (the base with components/cert-manager). cert-manager cannot run here,
// so the test plays its two parts from what the component asks of it: it
// issues the serving Certificate's Secret (a CA of its own, the
// Certificate's DNS names) and, as the CA injector, writes that CA into
// each APIService annotated cert-manager.io/inject-ca-from. Everything
// else is the component's: the server runs with the rendered arguments
// (no bootstrap, --tls-cert-file from the mounted Secret) and the
// kube-apiserver must verify it.
func TestCertManagerInstallVerified(t *testing.T) {
	rendered := renderKustomize(t, "manifests/overlays/cert-manager")
	objs, err := localcluster.Decode(rendered)
	if err != nil {
		t.Fatal(err)
	}
	var kept bytes.Buffer
	var serving *unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().Group == "cert-manager.io" {
			if o.GetKind() == "Certificate" && o.GetName() == "metrics-server" {
				serving = o
			}
			continue // no cert-manager CRDs here; the test plays them
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		kept.WriteString("---\n")
		kept.Write(b)
	}
	if serving == nil {
		t.Fatal("overlays/cert-manager renders no Certificate kube-system/metrics-server")
	}
	secretName, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")

	in := install(t, "cert-manager", kept.Bytes())
	ca := issueLikeCertManager(t, serving.GetNamespace(), secretName, dnsNames)
	injectCALikeCertManager(t, in, serving.GetNamespace()+"/"+serving.GetName(), ca)

	r := startServer(t, in, localcluster.StartOptions{})
	if v := argValue(r.Args, "--tls-bootstrap-secret"); v != "" {
		t.Errorf("the cert-manager overlay's server runs the bootstrap too (%s)", v)
	}
	// Start moved the mount path to the replica's copy of the Secret.
	if v := argValue(r.Args, "--tls-cert-file"); !strings.HasSuffix(v, filepath.Join("volumes", "serving-cert", "tls.crt")) {
		t.Errorf("--tls-cert-file=%s is not the mounted Secret's tls.crt", v)
	}
	waitAvailable(t, in)
	for _, name := range in.APIServices {
		a := getAPIService(t, name)
		if a.Spec.InsecureSkipTLSVerify || !bytes.Equal(a.Spec.CABundle, ca) {
			t.Errorf("APIService %s: insecureSkipTLSVerify %v, caBundle the issuer's CA: %v", name, a.Spec.InsecureSkipTLSVerify, bytes.Equal(a.Spec.CABundle, ca))
		}
	}
	checkServedCertificate(t, r.Port, ca)
	waitTop(t)
}

// issueLikeCertManager does what cert-manager's CA issuer does for the
// Certificate: a kubernetes.io/tls Secret with tls.crt, tls.key and
// ca.crt. It returns ca.crt and deletes the Secret when the test ends.
func issueLikeCertManager(t *testing.T, namespace, name string, dnsNames []string) []byte {
	t.Helper()
	ca, err := pki.NewCA("metrics-server-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(pki.Request{CommonName: dnsNames[0], DNSNames: dnsNames, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.KeyPEM(kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pki.CertPEM(ca.Cert)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": pki.CertPEM(kp.Cert), "tls.key": key, "ca.crt": caPEM},
	}
	if _, err := e.client.CoreV1().Secrets(namespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.client.CoreV1().Secrets(namespace).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting Secret %s/%s: %v", namespace, name, err)
		}
	})
	return caPEM
}

// injectCALikeCertManager does what cert-manager's CA injector does: every
// installed APIService annotated cert-manager.io/inject-ca-from: from gets
// ca as its caBundle. An APIService without the annotation fails the test.
func injectCALikeCertManager(t *testing.T, in *localcluster.Installation, from string, ca []byte) {
	t.Helper()
	for _, o := range in.Objects {
		if o.GetKind() != "APIService" {
			continue
		}
		if got := o.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != from {
			t.Fatalf("APIService %s: cert-manager.io/inject-ca-from %q, want %q", o.GetName(), got, from)
		}
		patch := fmt.Sprintf(`{"spec":{"caBundle":%q}}`, base64.StdEncoding.EncodeToString(ca))
		kubectl(t, "patch", "apiservice", o.GetName(), "--type", "merge", "-p", patch)
	}
}
