package certbootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
)

// TestInitCreates: with no Secret, Init creates one of ours (type
// kubernetes.io/tls, the four keys), writes the same certificate into the
// directory, and makes both APIServices verify it.
func TestInitCreates(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	dir := t.TempDir()
	b := c.bootstrapper(t, dir, nil, 0)
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := c.secret(t)
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q, want %q", s.Type, corev1.SecretTypeTLS)
	}
	if _, ok := s.Annotations[AnnotationOwner]; !ok {
		t.Errorf("Secret lacks the annotation %s", AnnotationOwner)
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
	for _, want := range []string{"kube-system/metrics-server-tls", "not made by the serving-certificate bootstrap", "--tls-cert-file"} {
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

// TestDamagedSecret: a Secret of ours whose content cannot be used is
// replaced: the CA is kept when it can be read, else a new one is made and
// the APIServices follow it.
func TestDamagedSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		newCA  bool
		damage []byte
	}{
		{"serving certificate", KeyCert, false, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
		{"serving key emptied", KeyKey, false, nil},
		{"serving certificate emptied (docs/tls.md)", KeyCert, false, []byte{}},
		{"CA key", KeyCAKey, true, []byte("not a key")},
		{"CA certificate", KeyCA, true, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
			if err := c.bootstrapper(t, t.TempDir(), nil, 0).Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			s := c.secret(t)
			oldCA := s.Data[KeyCA]
			s.Data[tc.key] = tc.damage
			if _, err := c.kube.CoreV1().Secrets(testNS).Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := c.bootstrapper(t, dir, nil, 0).Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			after := c.secret(t)
			repaired, err := parseBundle(after.Data)
			if err != nil {
				t.Fatalf("the Secret is still damaged: %v", err)
			}
			verify(t, repaired, "metrics-server.kube-system.svc", time.Now())
			if gotNew := !bytes.Equal(after.Data[KeyCA], oldCA); gotNew != tc.newCA {
				t.Errorf("new CA %v, want %v", gotNew, tc.newCA)
			}
			if !servesCert(readFiles(t, dir), after.Data[KeyCert]) {
				t.Error("the files are not the Secret's")
			}
			for _, name := range []string{v1API, v1beta1API} {
				if !bytes.Equal(c.apiService(t, name).Spec.CABundle, after.Data[KeyCA]) {
					t.Errorf("APIService %s: caBundle is not the Secret's ca.crt", name)
				}
			}
		})
	}
}

// TestReplicasRaceToCreate: two servers start together, both find no
// Secret and both create one; the loser re-reads and both serve the
// winner's certificate.
func TestReplicasRaceToCreate(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	dirs := []string{t.TempDir(), t.TempDir()}
	replicas := []*Bootstrapper{c.bootstrapper(t, dirs[0], nil, 0), c.bootstrapper(t, dirs[1], nil, 0)}
	holdFirstReads(2, replicas...)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { errs[i] = r.Init(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	if n := c.writes("create"); n != 2 {
		t.Errorf("%d creates, want 2 (both replicas found no Secret)", n)
	}
	s := c.secret(t)
	for i, dir := range dirs {
		if !servesCert(readFiles(t, dir), s.Data[KeyCert]) {
			t.Errorf("replica %d serves a certificate that is not the Secret's", i)
		}
	}
	if !bytes.Equal(c.apiService(t, v1beta1API).Spec.CABundle, s.Data[KeyCA]) {
		t.Error("the APIService's caBundle is not the Secret's ca.crt")
	}
}

// TestReplicasRaceToRenew: two servers find the serving certificate due for
// renewal at the same moment and both update the Secret at the
// resourceVersion they read; one gets Conflict, re-reads, and adopts the
// other's renewal.
func TestReplicasRaceToRenew(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	made := time.Now().Add(-300 * 24 * time.Hour)
	if err := c.bootstrapper(t, t.TempDir(), newFakeClock(made), 0).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := c.secret(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	replicas := []*Bootstrapper{c.bootstrapper(t, dirs[0], nil, 0), c.bootstrapper(t, dirs[1], nil, 0)}
	holdFirstReads(2, replicas...)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { errs[i] = r.Init(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	conflicts := 0
	for _, a := range c.kube.Actions() {
		if a.GetVerb() == "update" {
			conflicts++
		}
	}
	if conflicts != 2 {
		t.Errorf("%d updates, want 2 (one wins, one gets Conflict)", conflicts)
	}
	after := c.secret(t)
	if bytes.Equal(after.Data[KeyCert], before.Data[KeyCert]) {
		t.Fatal("the serving certificate was not renewed")
	}
	if !bytes.Equal(after.Data[KeyCA], before.Data[KeyCA]) {
		t.Error("the CA changed")
	}
	for i, dir := range dirs {
		if !servesCert(readFiles(t, dir), after.Data[KeyCert]) {
			t.Errorf("replica %d serves a certificate that is not the Secret's", i)
		}
	}
}

// TestForbiddenNamesTheRule: an RBAC refusal fails Init at once, with the
// rule to add.
func TestForbiddenNamesTheRule(t *testing.T) {
	for _, tc := range []struct {
		verb   string
		exists bool // the Secret exists, due for renewal
		want   string
	}{
		{"get", false, `{apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: ["metrics-server-tls"]}`},
		{"create", false, `{apiGroups: [""], resources: ["secrets"], verbs: ["create"]}`},
		{"update", true, `{apiGroups: [""], resources: ["secrets"], verbs: ["update"], resourceNames: ["metrics-server-tls"]}`},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			c := newCluster(t, metricsAPIService(v1API))
			if tc.exists {
				old := newFakeClock(time.Now().Add(-300 * 24 * time.Hour))
				if err := c.bootstrapper(t, t.TempDir(), old, 0).Init(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			c.kube.PrependReactor(tc.verb, "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, testSecret,
					errors.New(`User "system:serviceaccount:kube-system:metrics-server" cannot `+tc.verb+` resource "secrets"`))
			})
			start := time.Now()
			err := c.bootstrapper(t, t.TempDir(), nil, 0).Init(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Role in namespace kube-system") {
				t.Errorf("Init: %v\nwant an error with %s", err, tc.want)
			}
			if time.Since(start) > time.Second {
				t.Errorf("Init took %v: it retried a refusal", time.Since(start))
			}
		})
	}
}

// TestInitRetriesUnavailable: a kube-apiserver that answers 503 a few times
// (restarting) delays Init, does not fail it.
func TestInitRetriesUnavailable(t *testing.T) {
	c := newCluster(t)
	failures := 1
	c.kube.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failures > 0 {
			failures--
			return true, nil, apierrors.NewServiceUnavailable("the kube-apiserver is starting")
		}
		return false, nil, nil
	})
	if err := c.bootstrapper(t, t.TempDir(), nil, 0).Init(t.Context()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if failures != 0 {
		t.Error("the failing read was not made")
	}
}

// TestAPIServiceForbidden: the error of an APIService refusal names the
// ClusterRole rule.
func TestAPIServiceForbidden(t *testing.T) {
	for _, verb := range []string{"get", "patch"} {
		t.Run(verb, func(t *testing.T) {
			c := newCluster(t, metricsAPIService(v1API))
			c.agg.PrependReactor(verb, "apiservices", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}, v1API, errors.New("RBAC: access denied"))
			})
			b := c.bootstrapper(t, t.TempDir(), nil, 0)
			state, err := b.syncAPIService(t.Context(), v1API, []byte("ca"))
			want := `add "v1.metrics.k8s.io" to the resourceNames of the rule {apiGroups: ["apiregistration.k8s.io"], resources: ["apiservices"], verbs: ["get", "patch"]}`
			if state != stateFailed || err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "verb "+verb+" is missing") {
				t.Errorf("syncAPIService: %s, %v\nwant failed with %s", state, err, want)
			}
		})
	}
}

// caBundleIs waits (5s at most) until APIService name holds ca with TLS
// verified.
func caBundleIs(t *testing.T, c *cluster, name string, ca []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := c.agg.ApiregistrationV1().APIServices().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && bytes.Equal(a.Spec.CABundle, ca) && !a.Spec.InsecureSkipTLSVerify {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("APIService %s: not verifying with the Secret's CA within 5s (err %v)", name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunRepatchesDrift: Run puts the caBundle back when someone changes
// it or turns verification off, sets it on an APIService created after the
// start, and leaves a local APIService alone without stopping the others.
func TestRunRepatchesDrift(t *testing.T) {
	local := metricsAPIService("v1.local.example.com")
	local.Spec.Service, local.Spec.InsecureSkipTLSVerify = nil, false
	c := newCluster(t, metricsAPIService(v1beta1API), local)
	b := c.bootstrapper(t, t.TempDir(), nil, 10*time.Millisecond)
	b.cfg.APIServiceNames = []string{"v1.local.example.com", v1API, v1beta1API}
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ca := c.secret(t).Data[KeyCA]
	caBundleIs(t, c, v1beta1API, ca)
	if b.apiServiceStates[v1API] != stateMissing || b.apiServiceStates["v1.local.example.com"] != stateFailed {
		t.Errorf("states after Init: %v; want v1 missing and the local one failed", b.apiServiceStates)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := c.agg.ApiregistrationV1().APIServices().Create(t.Context(), metricsAPIService(v1API), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	caBundleIs(t, c, v1API, ca)

	for _, drift := range []struct {
		name     string
		caBundle []byte
		insecure bool
	}{
		{"insecureSkipTLSVerify", nil, true},
		{"another CA", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), false},
	} {
		a := c.apiService(t, v1beta1API)
		a.Spec.CABundle, a.Spec.InsecureSkipTLSVerify = drift.caBundle, drift.insecure
		if _, err := c.agg.ApiregistrationV1().APIServices().Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		caBundleIs(t, c, v1beta1API, ca)
	}
	if got := c.apiService(t, "v1.local.example.com"); got.Spec.CABundle != nil {
		t.Error("the local APIService got a caBundle")
	}
}

// TestRunRenewsAndAdopts: a running server renews its serving certificate
// when its clock passes two thirds of its life, and another running server
// adopts that renewal into its files at its next sync.
func TestRunRenewsAndAdopts(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	start := time.Now()
	clockA, clockB := newFakeClock(start), newFakeClock(start)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := c.bootstrapper(t, dirA, clockA, 10*time.Millisecond)
	b := c.bootstrapper(t, dirB, clockB, 10*time.Millisecond)
	for _, x := range []*Bootstrapper{a, b} {
		if err := x.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	first := c.secret(t).Data[KeyCert]
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	wg.Go(func() { b.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	// Only A's clock passes the renewal point.
	clockA.SetTime(start.Add(250 * 24 * time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for {
		renewed := c.secret(t).Data[KeyCert]
		if !bytes.Equal(renewed, first) &&
			servesCert(readFiles(t, dirA), renewed) && servesCert(readFiles(t, dirB), renewed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 5s: Secret renewed %v, A serves it %v, B serves it %v", !bytes.Equal(renewed, first),
				servesCert(readFiles(t, dirA), renewed), servesCert(readFiles(t, dirB), renewed))
		}
		time.Sleep(5 * time.Millisecond)
	}
	leaf, err := parseCerts(readFiles(t, dirB)[FileServing])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(readFiles(t, dirB)[FileCA])
	if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: "metrics-server.kube-system.svc", CurrentTime: start.Add(250 * 24 * time.Hour)}); err != nil {
		t.Errorf("B's renewed files do not verify: %v", err)
	}
	if n := c.writes("update"); n != 1 {
		t.Errorf("%d updates of the Secret, want 1 (A's renewal; B adopts it)", n)
	}
}

// servesCert reports whether the files hold certPEM as the serving
// certificate.
func servesCert(files map[string][]byte, certPEM []byte) bool {
	return bytes.HasPrefix(files[FileServing], certPEM)
}

// TestRunKeepsServingWhenTakenOver: a Secret replaced while the server runs
// by one that is not ours (cert-manager installed over the bootstrap) is
// left alone, and so are the APIServices, whose caBundle is now the other
// issuer's; the server keeps serving its last certificate.
func TestRunKeepsServingWhenTakenOver(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	dir := t.TempDir()
	b := c.bootstrapper(t, dir, nil, 10*time.Millisecond)
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	served := readFiles(t, dir)
	theirs := c.secret(t)
	theirs.Annotations = map[string]string{"cert-manager.io/certificate-name": "metrics-server"}
	theirs.Data = map[string][]byte{KeyCert: []byte("theirs"), KeyKey: []byte("theirs"), KeyCA: []byte("theirs")}
	if _, err := c.kube.CoreV1().Secrets(testNS).Update(t.Context(), theirs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	updates := c.writes("update")
	injected := []byte("-----BEGIN CERTIFICATE-----\ncert-manager's CA\n-----END CERTIFICATE-----\n")
	a := c.apiService(t, v1API)
	a.Spec.CABundle = injected
	if _, err := c.agg.ApiregistrationV1().APIServices().Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	b.Run(ctx)
	if b.lastSyncErr == "" || !strings.Contains(b.lastSyncErr, "not made by the serving-certificate bootstrap") {
		t.Errorf("last sync error %q, want the Secret refused as not ours", b.lastSyncErr)
	}
	if n := c.writes("update"); n != updates {
		t.Errorf("%d updates of a Secret that is not ours", n-updates)
	}
	if got := c.secret(t); string(got.Data[KeyCert]) != "theirs" {
		t.Error("the Secret's content changed")
	}
	now := readFiles(t, dir)
	for k := range served {
		if !bytes.Equal(now[k], served[k]) {
			t.Errorf("file %s changed", k)
		}
	}
	if got := c.apiService(t, v1API).Spec.CABundle; !bytes.Equal(got, injected) {
		t.Errorf("the APIService's caBundle was set back to the bootstrap's CA")
	}
}
