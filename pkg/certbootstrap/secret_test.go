package certbootstrap

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestInitCreates: with no Secret, Init creates one of ours (type Opaque,
// as the manifests ship it; the four keys; the hash of what it wrote),
// writes the same certificate into the directory, and makes both
// APIServices verify it.
func TestInitCreates(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	dir := t.TempDir()
	b := c.bootstrapper(t, dir, nil, 0)
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := c.secret(t)
	if s.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret type %q, want %q", s.Type, corev1.SecretTypeOpaque)
	}
	if _, ok := s.Annotations[AnnotationOwner]; !ok {
		t.Errorf("Secret lacks the annotation %s", AnnotationOwner)
	}
	if got := s.Annotations[AnnotationContentHash]; got != contentHash(s.Data) {
		t.Errorf("annotation %s = %q, want the content's hash %s", AnnotationContentHash, got, contentHash(s.Data))
	}
	files := readFiles(t, dir)
	if !bytes.Equal(files[FileCA], s.Data[KeyCA]) {
		t.Errorf("file %s differs from the Secret's %s", FileCA, KeyCA)
	}
	if want := append(append([]byte{}, s.Data[KeyCert]...), s.Data[KeyKey]...); !bytes.Equal(files[FileServing], want) {
		t.Errorf("file %s is not the Secret's %s followed by its %s", FileServing, KeyCert, KeyKey)
	}
	if _, err := tls.LoadX509KeyPair(b.ServingFile(), b.ServingFile()); err != nil {
		t.Errorf("%s does not load as a certificate and key: %v", FileServing, err)
	}
	if len(s.Data[KeyCAKey]) == 0 {
		t.Errorf("Secret has no %s", KeyCAKey)
	}
	stored, err := parseBundle(s.Data)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, stored, "metrics-server.kube-system.svc", time.Now())
	for _, name := range []string{v1API, v1beta1API} {
		a := c.apiService(t, name)
		if !bytes.Equal(a.Spec.CABundle, s.Data[KeyCA]) || a.Spec.InsecureSkipTLSVerify {
			t.Errorf("APIService %s: caBundle is ca.crt %v, insecureSkipTLSVerify %v; want true, false",
				name, bytes.Equal(a.Spec.CABundle, s.Data[KeyCA]), a.Spec.InsecureSkipTLSVerify)
		}
	}
	if b.ServingFile() != dir+"/tls.pem" || b.CAFile() != dir+"/ca.crt" {
		t.Errorf("file paths %s %s", b.ServingFile(), b.CAFile())
	}
}

// TestInitReuses: a second server (a restart, or another replica) finds the
// Secret usable and serves it as is: no write, the same files.
func TestInitReuses(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	first, second := t.TempDir(), t.TempDir()
	if err := c.bootstrapper(t, first, nil, 0).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	later := newFakeClock(time.Now().Add(200 * 24 * time.Hour)) // under two thirds of a year
	if err := c.bootstrapper(t, second, later, 0).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, m := c.writes("create"), c.writes("update"); n != 1 || m != 0 {
		t.Errorf("%d creates and %d updates of the Secret, want 1 and 0", n, m)
	}
	a, b := readFiles(t, first), readFiles(t, second)
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs between the two servers", k)
		}
	}
}

// TestInitRenews: a serving certificate with less than a third of its life
// left, or made for another Service, is replaced from the same CA; the
// APIServices' caBundle stays.
func TestInitRenews(t *testing.T) {
	made := time.Now().Add(-250 * 24 * time.Hour)
	for _, tc := range []struct {
		name    string
		service string
		now     time.Time
	}{
		{"a third of its life left", "metrics-server", made.Add(250 * 24 * time.Hour)},
		{"another service", "metrics-server-ha", made.Add(24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
			if err := c.bootstrapper(t, t.TempDir(), newFakeClock(made), 0).Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			before := c.secret(t)
			b := c.bootstrapper(t, t.TempDir(), newFakeClock(tc.now), 0)
			b.cfg.Service, b.dnsNames = tc.service, DNSNames(tc.service, testNS)
			if err := b.Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			after := c.secret(t)
			if !bytes.Equal(before.Data[KeyCA], after.Data[KeyCA]) || !bytes.Equal(before.Data[KeyCAKey], after.Data[KeyCAKey]) {
				t.Error("the CA changed")
			}
			if bytes.Equal(before.Data[KeyCert], after.Data[KeyCert]) {
				t.Fatal("the serving certificate was not renewed")
			}
			renewed, err := parseBundle(after.Data)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, renewed, tc.service+".kube-system.svc", tc.now)
			// Certificates hold whole seconds.
			if got := renewed.cert.NotAfter.Sub(tc.now); got > ServingValidity || got <= ServingValidity-time.Second {
				t.Errorf("renewed certificate lives %v from now, want %v", got, ServingValidity)
			}
			if !bytes.Equal(c.apiService(t, v1API).Spec.CABundle, after.Data[KeyCA]) {
				t.Error("the APIService's caBundle is not ca.crt")
			}
		})
	}
}

// TestSecretNotOurs: a Secret the bootstrap did not make (cert-manager's,
// an operator's) is never written: Init fails at once saying what to do.
func TestSecretNotOurs(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API))
	theirs := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: testSecret, Namespace: testNS, Annotations: map[string]string{"cert-manager.io/certificate-name": "metrics-server"}},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte("theirs"), "tls.key": []byte("theirs")},
	}
	if _, err := c.kube.CoreV1().Secrets(testNS).Create(t.Context(), theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.bootstrapper(t, t.TempDir(), nil, 0).Init(t.Context())
	for _, want := range []string{"kube-system/metrics-server-tls", "not the serving-certificate bootstrap's to write", "--tls-cert-file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Init: %v; want an error with %q", err, want)
		}
	}
	if time.Since(start) > time.Second {
		t.Errorf("Init took %v: it retried an error that needs a person", time.Since(start))
	}
	if n := c.writes("update"); n != 0 {
		t.Errorf("%d updates of a Secret that is not ours", n)
	}
	if got := c.secret(t); string(got.Data["tls.crt"]) != "theirs" {
		t.Error("the Secret's content changed")
	}
	if c.apiService(t, v1API).Spec.CABundle != nil {
		t.Error("the APIService was patched")
	}
}
