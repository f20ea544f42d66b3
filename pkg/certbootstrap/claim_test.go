package certbootstrap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
)

// foreignPKI is what another issuer (cert-manager) writes: its own CA and
// a serving certificate it signed for the Service, in PEM.
type foreignPKI struct {
	caPEM, certPEM, keyPEM []byte
}

func newForeignPKI(t *testing.T, caCN string) foreignPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: caCN}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "metrics-server"},
		DNSNames: testNames, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		caTmpl, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return foreignPKI{
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: caDER}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: keyDER}),
	}
}

// recordedEvent is one event a fakeEvents took.
type recordedEvent struct {
	regarding *corev1.ObjectReference
	eventType string
	reason    string
	note      string
}

// fakeEvents is an EventRecorder that keeps what it is given.
type fakeEvents struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (f *fakeEvents) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref, _ := regarding.(*corev1.ObjectReference)
	f.events = append(f.events, recordedEvent{regarding: ref, eventType: eventtype, reason: reason, note: fmt.Sprintf(note, args...)})
}

// about returns the events regarding an object of kind named name.
func (f *fakeEvents) about(kind, name string) []recordedEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recordedEvent
	for _, e := range f.events {
		if e.regarding != nil && e.regarding.Kind == kind && e.regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// logBuffer is klog's output while a test runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count returns the number of lines that contain every one of parts.
func (l *logBuffer) count(parts ...string) int {
	klog.Flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// captureLogs sends klog's output to a buffer until the test ends.
func captureLogs(t *testing.T) *logBuffer {
	t.Helper()
	l := &logBuffer{}
	klog.LogToStderr(false)
	klog.SetOutputBySeverity("INFO", l) // every line once: INFO takes all severities
	t.Cleanup(func() {
		klog.Flush()
		klog.SetOutput(nil)
		klog.LogToStderr(true)
	})
	return l
}

// shell is the Secret the manifests ship: our annotation, no content.
func shell(typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: testSecret, Namespace: testNS, Annotations: map[string]string{AnnotationOwner: "metrics-server"}},
		Type:       typ,
		Data:       data,
	}
}

// TestInitFillsShippedSecret: the empty annotated Secret the manifests ship
// (Opaque, or kubernetes.io/tls with empty keys) is filled with one update
// at its resourceVersion, its type kept, no create; the APIServices follow.
func TestInitFillsShippedSecret(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *corev1.Secret
	}{
		{"opaque, no data", shell(corev1.SecretTypeOpaque, nil)},
		{"kubernetes.io/tls, empty keys", shell(corev1.SecretTypeTLS, map[string][]byte{KeyCert: {}, KeyKey: {}})},
		{"emptied by an operator, old hash kept", func() *corev1.Secret {
			s := shell(corev1.SecretTypeOpaque, map[string][]byte{KeyCert: {}, KeyKey: {}, KeyCA: {}, KeyCAKey: {}})
			s.Annotations[AnnotationContentHash] = "0123"
			return s
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := captureLogs(t)
			c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
			if _, err := c.kube.CoreV1().Secrets(testNS).Create(t.Context(), tc.s, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
				t.Fatal(err)
			}
			c.kube.ClearActions()
			dir := t.TempDir()
			if err := c.bootstrapper(t, dir, nil, 0).Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n, m := c.writes("create"), c.writes("update"); n != 0 || m != 1 {
				t.Errorf("%d creates and %d updates, want 0 and 1", n, m)
			}
			s := c.secret(t)
			if s.Type != tc.s.Type {
				t.Errorf("type %q, want %q kept", s.Type, tc.s.Type)
			}
			filled, err := parseBundle(s.Data)
			if err != nil {
				t.Fatalf("the Secret was not filled: %v", err)
			}
			verify(t, filled, "metrics-server.kube-system.svc", time.Now())
			if got := s.Annotations[AnnotationContentHash]; got != contentHash(s.Data) {
				t.Errorf("annotation %s = %q, want %s", AnnotationContentHash, got, contentHash(s.Data))
			}
			if !servesCert(readFiles(t, dir), s.Data[KeyCert]) {
				t.Error("the files are not the Secret's")
			}
			if !bytes.Equal(c.apiService(t, v1API).Spec.CABundle, s.Data[KeyCA]) {
				t.Error("the APIService's caBundle is not the Secret's ca.crt")
			}
			if n := logs.count("Filled the empty serving-certificate Secret"); n != 1 {
				t.Errorf("%d Info lines about filling the Secret, want 1", n)
			}
			if n := logs.count("E1"); n != 0 {
				t.Errorf("%d error lines for the normal first start", n)
			}
		})
	}
}

// TestClaimOf: a Secret with our annotation is ours only when no other
// issuer marked it and its content is explained.
func TestClaimOf(t *testing.T) {
	ours, err := newBundle(time.Now(), testNames)
	if err != nil {
		t.Fatal(err)
	}
	theirs := newForeignPKI(t, "cert-manager test CA")
	lookalike := newForeignPKI(t, caCNStart+"123") // our CA's name, but no ca.key of it
	hashed := func(data map[string][]byte) map[string]string {
		return map[string]string{AnnotationOwner: "metrics-server", AnnotationContentHash: contentHash(data)}
	}
	managed := func(manager string, keys ...string) []metav1.ManagedFieldsEntry {
		raw := `{"f:data":{`
		for i, k := range keys {
			if i > 0 {
				raw += ","
			}
			raw += `"f:` + k + `":{}`
		}
		raw += `}}`
		return []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(raw)}}}
	}
	empty := map[string][]byte{KeyCert: {}, KeyKey: {}, KeyCA: {}, KeyCAKey: {}}
	changed := ours.data()
	changed[KeyCA] = theirs.caPEM
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		managed     []metav1.ManagedFieldsEntry
		data        map[string][]byte
		want        claim
		wantErr     string // part of the error; "" means ours
	}{
		{"shell", map[string]string{AnnotationOwner: "x"}, nil, nil, claimShell, ""},
		{"shell with empty keys owned by kubectl", map[string]string{AnnotationOwner: "x"}, managed("kubectl-patch", KeyCert, KeyKey, KeyCA, KeyCAKey), empty, claimShell, ""},
		{"our hash", hashed(ours.data()), managed(FieldManager, KeyCert, KeyKey, KeyCA, KeyCAKey), ours.data(), claimHash, ""},
		{"legacy bundle", map[string]string{AnnotationOwner: "x"}, managed(legacyFieldManager, KeyCert, KeyKey, KeyCA, KeyCAKey), ours.data(), claimLegacy, ""},
		{"hash mismatch", hashed(ours.data()), nil, changed, 0, "not what the bootstrap last wrote"},
		{"cert-manager annotation, our content", func() map[string]string {
			a := hashed(ours.data())
			a["cert-manager.io/certificate-name"] = "metrics-server"
			return a
		}(), nil, ours.data(), 0, "annotation cert-manager.io/certificate-name"},
		{"cert-manager annotation on a shell", map[string]string{AnnotationOwner: "x", "cert-manager.io/issuer-name": "ca"}, nil, nil, 0, "annotation cert-manager.io/issuer-name"},
		{"another manager writes a key, our content", hashed(ours.data()), managed("cert-manager-certificates-issuing", KeyCert), ours.data(), 0, `field manager "cert-manager-certificates-issuing" writes its key tls.crt`},
		{"legacy-shaped, another CA", map[string]string{AnnotationOwner: "x"}, nil,
			map[string][]byte{KeyCA: theirs.caPEM, KeyCert: theirs.certPEM, KeyKey: theirs.keyPEM, KeyCAKey: ours.caKPEM}, 0, "not made by the bootstrap"},
		{"legacy-shaped, our CA name, not self-made", map[string]string{AnnotationOwner: "x"}, nil,
			map[string][]byte{KeyCA: lookalike.caPEM, KeyCert: lookalike.certPEM, KeyKey: lookalike.keyPEM, KeyCAKey: lookalike.keyPEM}, 0, "not made by the bootstrap"},
		{"no hash, partial content", map[string]string{AnnotationOwner: "x"}, nil, map[string][]byte{KeyCert: ours.certPEM}, 0, "not made by the bootstrap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: tc.annotations, ManagedFields: tc.managed}, Data: tc.data}
			got, err := claimOf(s)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Errorf("claimOf = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("claimOf = %v, %v; want an error with %q", got, err, tc.wantErr)
			}
		})
	}
}

// TestChangedSecretIsReported: content of ours that someone changed (its
// hash no longer matches) is reported, not replaced: Init fails at once
// saying what to do, nothing is written, the APIServices keep their
// caBundle.
func TestChangedSecretIsReported(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		change []byte
	}{
		{"serving certificate", KeyCert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
		{"serving key emptied", KeyKey, nil},
		{"serving certificate emptied", KeyCert, []byte{}},
		{"CA key", KeyCAKey, []byte("not a key")},
		{"CA certificate", KeyCA, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
			if err := c.bootstrapper(t, t.TempDir(), nil, 0).Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			s := c.secret(t)
			oldCA := s.Data[KeyCA]
			s.Data[tc.key] = tc.change
			if _, err := c.kube.CoreV1().Secrets(testNS).Update(t.Context(), s, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
				t.Fatal(err)
			}
			changed := c.secret(t)
			updates := c.writes("update")
			ev := &fakeEvents{}
			b := c.bootstrapper(t, t.TempDir(), nil, 0)
			b.cfg.Events = ev
			err := b.Init(t.Context())
			for _, want := range []string{"not what the bootstrap last wrote", "kubectl -n kube-system patch secret metrics-server-tls"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Init: %v; want an error with %q", err, want)
				}
			}
			if n := c.writes("update"); n != updates {
				t.Errorf("%d updates of a changed Secret", n-updates)
			}
			if got := c.secret(t); got.ResourceVersion != changed.ResourceVersion {
				t.Error("the Secret was written")
			}
			for _, name := range []string{v1API, v1beta1API} {
				if !bytes.Equal(c.apiService(t, name).Spec.CABundle, oldCA) {
					t.Errorf("APIService %s: caBundle changed", name)
				}
			}
			for _, name := range []string{v1API, v1beta1API} {
				if got := ev.about("APIService", name); len(got) != 1 || got[0].eventType != corev1.EventTypeWarning || got[0].reason != ReasonSecretNotOurs {
					t.Errorf("events on APIService %s: %+v; want one Warning %s", name, got, ReasonSecretNotOurs)
				}
			}
		})
	}
}

// TestLegacySecretAdopted: a Secret an earlier version wrote (type
// kubernetes.io/tls, no hash, written by field manager metrics-server) is
// served as is; when its serving certificate is due it is renewed from the
// same CA and the hash recorded.
func TestLegacySecretAdopted(t *testing.T) {
	made := time.Now().Add(-250 * 24 * time.Hour)
	old, err := newBundle(made, testNames)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	legacy := shell(corev1.SecretTypeTLS, old.data())
	if _, err := c.kube.CoreV1().Secrets(testNS).Create(t.Context(), legacy, metav1.CreateOptions{FieldManager: legacyFieldManager}); err != nil {
		t.Fatal(err)
	}
	if err := c.bootstrapper(t, t.TempDir(), newFakeClock(made.Add(24*time.Hour)), 0).Init(t.Context()); err != nil {
		t.Fatalf("Init on a legacy Secret not due: %v", err)
	}
	if n := c.writes("update"); n != 0 {
		t.Errorf("%d updates of a legacy Secret not due for renewal, want 0", n)
	}
	dir := t.TempDir()
	if err := c.bootstrapper(t, dir, nil, 0).Init(t.Context()); err != nil {
		t.Fatalf("Init on a legacy Secret due: %v", err)
	}
	s := c.secret(t)
	if n := c.writes("update"); n != 1 {
		t.Errorf("%d updates, want 1 (the renewal)", n)
	}
	if !bytes.Equal(s.Data[KeyCA], old.caPEM) || !bytes.Equal(s.Data[KeyCAKey], old.caKPEM) {
		t.Error("the CA changed")
	}
	if bytes.Equal(s.Data[KeyCert], old.certPEM) {
		t.Error("the serving certificate was not renewed")
	}
	if got := s.Annotations[AnnotationContentHash]; got != contentHash(s.Data) {
		t.Errorf("annotation %s = %q after the renewal, want %s", AnnotationContentHash, got, contentHash(s.Data))
	}
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("type %q, want kubernetes.io/tls kept", s.Type)
	}
	if !servesCert(readFiles(t, dir), s.Data[KeyCert]) {
		t.Error("the files are not the Secret's")
	}
}

// TestRunLeavesCertManagerTakeoverAlone: cert-manager takes the Secret over
// as its server-side apply does (its annotations and field manager, new
// tls.crt, tls.key and ca.crt; our annotations and ca.key kept, as apply
// keeps fields it does not own). A running bootstrap whose certificate is
// due leaves it alone (it used to judge it damaged, make a new CA and
// overwrite it), says so once in an error line and a Warning event on the
// Secret, leaves the APIServices' caBundle to cert-manager, and serves its
// last files.
func TestRunLeavesCertManagerTakeoverAlone(t *testing.T) {
	logs := captureLogs(t)
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	made := time.Now().Add(-300 * 24 * time.Hour)
	clk := newFakeClock(made)
	dir := t.TempDir()
	ev := &fakeEvents{}
	b := c.bootstrapper(t, dir, clk, 10*time.Millisecond)
	b.cfg.Events = ev
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	served := readFiles(t, dir)
	theirs := newForeignPKI(t, "cert-manager test CA")
	apply := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"` + testSecret + `","namespace":"` + testNS + `","annotations":{` +
		`"cert-manager.io/certificate-name":"metrics-server","cert-manager.io/issuer-name":"metrics-server-ca","cert-manager.io/issuer-kind":"Issuer",` +
		`"cert-manager.io/common-name":"metrics-server.kube-system.svc"}},"type":"kubernetes.io/tls","data":{` +
		`"tls.crt":"` + b64(theirs.certPEM) + `","tls.key":"` + b64(theirs.keyPEM) + `","ca.crt":"` + b64(theirs.caPEM) + `"}}`
	if _, err := c.kube.CoreV1().Secrets(testNS).Patch(t.Context(), testSecret, types.ApplyPatchType, []byte(apply),
		metav1.PatchOptions{FieldManager: "cert-manager-certificates-issuing", Force: ptrTrue()}); err != nil {
		t.Fatal(err)
	}
	taken := c.secret(t)
	if _, ok := taken.Annotations[AnnotationOwner]; !ok || len(taken.Data[KeyCAKey]) == 0 {
		t.Fatalf("the apply did not keep our annotation and ca.key as a real one does: %v", taken.Annotations)
	}
	injected := theirs.caPEM
	for _, name := range []string{v1API, v1beta1API} {
		a := c.apiService(t, name)
		a.Spec.CABundle = injected
		if _, err := c.agg.ApiregistrationV1().APIServices().Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	updates := c.writes("update")
	clk.SetTime(time.Now()) // our certificate is due for renewal
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	b.Run(ctx)

	if n := c.writes("update"); n != updates {
		t.Errorf("%d updates of a Secret cert-manager took over", n-updates)
	}
	if got := c.secret(t); !bytes.Equal(got.Data[KeyCA], theirs.caPEM) || !bytes.Equal(got.Data[KeyCert], theirs.certPEM) {
		t.Error("cert-manager's content was replaced")
	}
	for _, name := range []string{v1API, v1beta1API} {
		if got := c.apiService(t, name).Spec.CABundle; !bytes.Equal(got, injected) {
			t.Errorf("APIService %s: caBundle moved away from cert-manager's CA", name)
		}
	}
	now := readFiles(t, dir)
	for k := range served {
		if !bytes.Equal(now[k], served[k]) {
			t.Errorf("file %s changed", k)
		}
	}
	if n := logs.count("Cannot sync the serving certificate", "another issuer has taken it over"); n != 1 {
		t.Errorf("%d error lines about the takeover in %d syncs, want 1", n, 300/10)
	}
	for _, name := range []string{v1API, v1beta1API} {
		if got := ev.about("APIService", name); len(got) != 1 || got[0].eventType != corev1.EventTypeWarning || !strings.Contains(got[0].note, "another issuer") {
			t.Errorf("events on APIService %s: %+v; want one Warning about another issuer", name, got)
		}
	}
	// Not on the Secret: its events would live in its namespace, where the
	// server may not write events.
	if got := ev.about("Secret", testSecret); len(got) != 0 {
		t.Errorf("events on the Secret: %+v; want none", got)
	}
}

// TestRunFailedSyncKeepsCABundle: after replica A replaced the CA (the
// Secret's ca.crt holds the new CA, then the old) and set the APIServices'
// caBundle to it, replica B, whose reads of the Secret fail, leaves the
// caBundle alone (it used to set it back to its stale CA, so the
// kube-apiserver no longer trusted A's new certificate).
func TestRunFailedSyncKeepsCABundle(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	made := time.Now().Add(-(CAValidity - 100*24*time.Hour)) // the CA has 100 days left at now
	replicaB := c.bootstrapper(t, t.TempDir(), newFakeClock(made), 10*time.Millisecond)
	if err := replicaB.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldCA := c.secret(t).Data[KeyCA]
	if err := c.bootstrapper(t, t.TempDir(), nil, 0).Init(t.Context()); err != nil { // replica A, at now
		t.Fatal(err)
	}
	rotated := c.secret(t).Data[KeyCA]
	if bytes.Equal(rotated, oldCA) || !bytes.HasSuffix(rotated, oldCA) {
		t.Fatal("replica A did not replace the CA keeping the old one after it")
	}
	caBundleIs(t, c, v1API, rotated)
	c.kube.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	replicaB.Run(ctx)
	if replicaB.lastSyncErr == "" {
		t.Fatal("replica B's syncs did not fail")
	}
	for _, name := range []string{v1API, v1beta1API} {
		if got := c.apiService(t, name).Spec.CABundle; !bytes.Equal(got, rotated) {
			t.Errorf("APIService %s: caBundle moved from the Secret's current CA (old CA only: %v)", name, bytes.Equal(got, oldCA))
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func ptrTrue() *bool { v := true; return &v }
