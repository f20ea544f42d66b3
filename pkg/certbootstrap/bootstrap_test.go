package certbootstrap

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
)

// TestForbiddenNamesTheRule: an RBAC refusal fails Init at once, with the
// rule to add; a refused create names the empty Secret to make instead,
// never a grant of create on Secrets (with which the server's identity
// could mint a bootstrap token).
func TestForbiddenNamesTheRule(t *testing.T) {
	for _, tc := range []struct {
		verb   string
		exists bool // the Secret exists, due for renewal
		want   []string
	}{
		{"get", false, []string{`{apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: ["metrics-server-tls"]}`, "Role in namespace kube-system"}},
		{"create", false, []string{
			"kubectl -n kube-system create secret generic metrics-server-tls",
			"kubectl -n kube-system annotate secret metrics-server-tls kubemetrics.io/tls-bootstrap=metrics-server",
			"get and update",
		}},
		{"update", true, []string{`{apiGroups: [""], resources: ["secrets"], verbs: ["update"], resourceNames: ["metrics-server-tls"]}`, "Role in namespace kube-system"}},
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
			if err == nil {
				t.Fatal("Init succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Init: %v\nwant an error with %s", err, w)
				}
			}
			if tc.verb == "create" && strings.Contains(err.Error(), `verbs: ["create"]`) {
				t.Errorf("Init: %v\nsuggests granting create on Secrets", err)
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
	if b.lastSyncErr == "" || !strings.Contains(b.lastSyncErr, "not the serving-certificate bootstrap's to write") {
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

// TestInitGivesUpSayingWhatToDo: a kube-apiserver that stays unavailable
// makes Init fail after its attempts with an error that tells the operator
// what to check, not only the last refusal.
func TestInitGivesUpSayingWhatToDo(t *testing.T) {
	c := newCluster(t)
	reads := 0
	c.kube.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		reads++
		return true, nil, apierrors.NewServiceUnavailable("the kube-apiserver is starting")
	})
	b := c.bootstrapper(t, t.TempDir(), nil, 0)
	b.initBackoff = time.Millisecond
	err := b.Init(t.Context())
	if err == nil {
		t.Fatal("Init succeeded against an unavailable kube-apiserver")
	}
	if reads != initAttempts {
		t.Errorf("Init read the Secret %d times, want %d", reads, initAttempts)
	}
	for _, want := range []string{"the kube-apiserver is starting", "--kubeconfig", fmt.Sprint(initAttempts)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Init's error %q does not contain %q", err, want)
		}
	}
}
