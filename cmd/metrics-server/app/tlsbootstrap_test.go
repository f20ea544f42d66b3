package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
	"github.com/kubemetrics/metrics-server/pkg/certbootstrap"
)

// TestServingCertBootstrap runs the real server with
// --tls-bootstrap-secret=kube-system/metrics-server-tls against fake API
// clients: the empty annotated Secret the manifests ship is filled (not
// created), both APIServices (shipped with
// insecureSkipTLSVerify) get its ca.crt as caBundle, and the server's
// certificate verifies against that ca.crt for the name the kube-apiserver
// dials, metrics-server.kube-system.svc. Then the bootstrap's clock passes
// two thirds of the serving certificate's life: it renews the Secret and
// rewrites the files, and new handshakes present the renewed certificate
// while clients keep calling, none failing, and the server never reads a
// certificate without its key.
func TestServingCertBootstrap(t *testing.T) {
	logged := captureLogs(t, 2)
	k := &fakeKubelet{wantToken: testToken, nodeMilliCores: 31_500, nodeMemoryBytes: 192 << 30, pods: []fakePod{
		{"shop", "checkout-0", []fakeContainer{{"jvm", 4_200, 24 << 30}}},
	}}
	kubeletSrv := k.serve()
	t.Cleanup(kubeletSrv.Close)
	shipped := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server-tls", Namespace: "kube-system", Annotations: map[string]string{certbootstrap.AnnotationOwner: "metrics-server"}},
		Type:       corev1.SecretTypeOpaque,
	}
	kube := fake.NewClientset(loopbackNode("worker-1", mustPort(t, kubeletSrv.URL)), shipped)
	meta := fakeMetadata(t, podMeta("shop", "checkout-0", nil))
	agg := aggfake.NewClientset(shippedAPIService("v1", 200), shippedAPIService("v1beta1", 100))

	// The certificates are made 250 days ago by the bootstrap's clock, so
	// they are valid now and due for renewal once the clock reaches now.
	now := time.Now()
	clk := clocktesting.NewFakePassiveClock(now.Add(-250 * 24 * time.Hour))
	opts := options.NewOptions()
	opts.TLSBootstrap.Secret = "kube-system/metrics-server-tls"
	opts.TLSBootstrap.Clock = clk
	opts.TLSBootstrap.Interval = 50 * time.Millisecond
	opts.SecureServing.ServerCert.CertDirectory = t.TempDir()
	opts.DisableAuthForTesting = true
	ctx, cancel := context.WithCancel(context.Background())
	keepInStep, err := opts.BootstrapServingCert(ctx, kube, agg.ApiregistrationV1())
	if err != nil {
		t.Fatal(err)
	}
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); keepInStep(ctx) }()
	t.Cleanup(func() { cancel(); <-loopDone })
	addr, _ := runServer(t, opts, testToken, kube, meta)

	secret, err := kube.CoreV1().Secrets("kube-system").Get(ctx, "metrics-server-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.Data["ca.key"]) == 0 || secret.Type != corev1.SecretTypeOpaque {
		t.Fatalf("the shipped Secret was not filled: type %s, %d keys", secret.Type, len(secret.Data))
	}
	for _, a := range kube.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "secrets" {
			t.Error("the bootstrap created a Secret; the shipped one was there to fill")
		}
	}
	caPEM := secret.Data["ca.crt"]
	for _, name := range []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"} {
		a, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Spec.CABundle, caPEM) || a.Spec.InsecureSkipTLSVerify {
			t.Errorf("APIService %s: caBundle is the Secret's ca.crt: %v, insecureSkipTLSVerify: %v; want true, false",
				name, bytes.Equal(a.Spec.CABundle, caPEM), a.Spec.InsecureSkipTLSVerify)
		}
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("the Secret's ca.crt holds no certificate")
	}
	const path = "/apis/metrics.k8s.io/v1beta1/nodes"
	client := func(serverName string) *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: serverName},
		}}
	}
	first := serialOf(t, secret.Data["tls.crt"])
	waitFor(t, 30*time.Second, func() error {
		serial, err := rotationGet(client("metrics-server.kube-system.svc"), "https://"+addr+path, "")
		if err != nil {
			return err
		}
		if serial != first {
			return fmt.Errorf("the server presents serial %s, not the Secret's %s", serial, first)
		}
		return nil
	})
	for _, name := range []string{"metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc.cluster.local"} {
		if _, err := rotationGet(client(name), "https://"+addr+path, ""); err != nil {
			t.Errorf("dialled as %s: %v", name, err)
		}
	}
	// DNS names only: the kube-apiserver dials the Service's name.
	if _, err := rotationGet(client("127.0.0.1"), "https://"+addr+path, ""); err == nil {
		t.Error("the serving certificate verified for 127.0.0.1; want DNS names only")
	}

	// Renewal under load: two clients, a new connection per request.
	load := &rotationLoad{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		c := client("metrics-server.kube-system.svc")
		wg.Go(func() {
			for n := 0; n < 20_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				serial, err := rotationGet(c, "https://"+addr+path, "")
				load.record(fmt.Sprintf("client %d request %d", i, n), true, serial, err)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	clk.SetTime(now)
	var renewed string
	waitFor(t, 90*time.Second, func() error {
		s, err := kube.CoreV1().Secrets("kube-system").Get(ctx, "metrics-server-tls", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if renewed = serialOf(t, s.Data["tls.crt"]); renewed == first {
			return errors.New("the Secret's serving certificate is not renewed yet")
		}
		if !bytes.Equal(s.Data["ca.crt"], caPEM) {
			t.Fatal("the renewal changed the CA")
		}
		if !load.fresh(renewed) {
			return fmt.Errorf("no new handshake presented the renewed serial %s yet", renewed)
		}
		return nil
	})
	load.startAfter(renewed)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	sum := load.summary()
	t.Logf("%d requests during the renewal, %d before the reload presented the first certificate, %d after it", sum.requests, sum.freshOld, sum.freshAfter)
	for _, f := range sum.failures {
		t.Errorf("failed during the renewal: %s", f)
	}
	if sum.freshOld == 0 || sum.freshAfter == 0 {
		t.Errorf("the load did not cover the renewal: %d requests on the first certificate, %d after the reload", sum.freshOld, sum.freshAfter)
	}
	for _, stale := range sum.staleAfter {
		t.Errorf("after the reload a new handshake presented serial %s, not %s: %s", stale.serial, renewed, stale.what)
	}
	klog.Flush()
	for _, line := range strings.Split(logged.String(), "\n") {
		if strings.Contains(line, "does not match") {
			t.Errorf("the server read a certificate and key that do not match: %s", line)
		}
	}
}

// shippedAPIService is an APIService of metrics.k8s.io as upstream's
// manifests ship it: insecureSkipTLSVerify, no caBundle.
func shippedAPIService(version string, priority int32) *apiregv1.APIService {
	port := int32(443)
	return &apiregv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: version + ".metrics.k8s.io"},
		Spec: apiregv1.APIServiceSpec{
			Service:               &apiregv1.ServiceReference{Namespace: "kube-system", Name: "metrics-server", Port: &port},
			Group:                 "metrics.k8s.io",
			Version:               version,
			InsecureSkipTLSVerify: true,
			GroupPriorityMinimum:  100,
			VersionPriority:       priority,
		},
	}
}

// serialOf returns the serial of the first certificate in pemData, as
// rotationGet reports it.
func serialOf(t *testing.T, pemData []byte) string {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}
