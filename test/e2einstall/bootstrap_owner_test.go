package e2einstall

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
	"github.com/kubemetrics/metrics-server/pkg/certbootstrap"
)

// The objects of TestBootstrapOwner, apart from the other tests' (which
// install into kube-system): a namespace of its own, and APIServices of
// groups nobody serves (the caBundle patch needs no backend).
const (
	ownerNS          = "bootstrap-owner"
	ownerSecret      = "metrics-server-tls-bootstrap"
	ownerService     = "metrics-server"
	ownerAPIService  = "v1beta1.bootstrap-owner.test.kubemetrics.io"
	otherAPIService  = "v1beta1.other-owner.test.kubemetrics.io"
	certManagerField = "cert-manager-certificates-issuing"
)

// TestBootstrapOwner runs the serving-certificate bootstrap in-process, as
// the server wires it (options.BootstrapServingCert: the real clients and
// event recorder), against the real kube-apiserver, and checks that it
// widens no one's power:
//
//   - it fills the empty annotated Secret it is given (here of type
//     kubernetes.io/tls with empty keys, as a Secret that cert-manager can
//     later write: cert-manager applies type kubernetes.io/tls, which an
//     Opaque Secret would refuse as immutable);
//   - it sets the caBundle of the APIService its Service backs, and leaves
//     alone one that another Service backs (as prometheus-adapter's
//     custom.metrics.k8s.io), with a Warning event in namespace default;
//   - once cert-manager takes the Secret over with its server-side apply
//     (its field manager and annotations, its tls.crt, tls.key and ca.crt;
//     apply keeps our annotations and ca.key), the running bootstrap's
//     syncs leave the Secret and the APIServices alone and say so in a
//     Warning event on the Secret. Issue 15 reproduced this on a real
//     kube-apiserver: after one sync the issuer went from cert-manager's
//     CA to CN=metrics-server-ca@<time>.
func TestBootstrapOwner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	restCfg, err := clientcmd.BuildConfigFromFlags("", e.cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// Clients of its own, not limited to client-go's default 5 requests a
	// second: the bootstrap syncs every 200ms here, not every minute.
	restCfg.QPS, restCfg.Burst = 100, 200
	agg, err := apiregv1client.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownerNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kube.CoreV1().Namespaces().Delete(context.Background(), ownerNS, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting namespace %s: %v", ownerNS, err)
		}
	})
	shell := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ownerSecret, Namespace: ownerNS, Annotations: map[string]string{certbootstrap.AnnotationOwner: "metrics-server"}},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": {}, "tls.key": {}},
	}
	if _, err := kube.CoreV1().Secrets(ownerNS).Create(ctx, shell, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	theirCA, err := pki.NewCA("prometheus-adapter-ca")
	if err != nil {
		t.Fatal(err)
	}
	theirBundle := pki.CertPEM(theirCA.Cert)
	port := int32(443)
	for _, a := range []*apiregv1.APIService{
		{
			ObjectMeta: metav1.ObjectMeta{Name: ownerAPIService},
			Spec: apiregv1.APIServiceSpec{Service: &apiregv1.ServiceReference{Namespace: ownerNS, Name: ownerService, Port: &port},
				Group: "bootstrap-owner.test.kubemetrics.io", Version: "v1beta1", InsecureSkipTLSVerify: true, GroupPriorityMinimum: 10, VersionPriority: 10},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: otherAPIService},
			Spec: apiregv1.APIServiceSpec{Service: &apiregv1.ServiceReference{Namespace: "monitoring", Name: "prometheus-adapter", Port: &port},
				Group: "other-owner.test.kubemetrics.io", Version: "v1beta1", CABundle: theirBundle, GroupPriorityMinimum: 10, VersionPriority: 10},
		},
	} {
		if _, err := agg.APIServices().Create(ctx, a, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := agg.APIServices().Delete(context.Background(), a.Name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("deleting APIService %s: %v", a.Name, err)
			}
		})
	}

	o := options.NewOptions()
	o.TLSBootstrap.Secret = ownerNS + "/" + ownerSecret
	o.TLSBootstrap.Service = ownerService
	o.TLSBootstrap.APIServices = []string{ownerAPIService, otherAPIService}
	o.TLSBootstrap.Interval = 200 * time.Millisecond
	o.SecureServing.ServerCert.CertDirectory = t.TempDir()
	run, err := o.BootstrapServingCert(ctx, kube, agg)
	if err != nil {
		t.Fatalf("the bootstrap's first sync: %v", err)
	}
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); run(loopCtx) }()
	t.Cleanup(func() { stopLoop(); <-loopDone })

	// The shell is filled, and only our APIService follows it.
	filled, err := kube.CoreV1().Secrets(ownerNS).Get(ctx, ownerSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if filled.Type != corev1.SecretTypeTLS || len(filled.Data["ca.key"]) == 0 || filled.Annotations[certbootstrap.AnnotationContentHash] == "" {
		t.Fatalf("the shell was not filled as ours: type %s, keys %v, annotations %v", filled.Type, secretKeys(filled.Data), filled.Annotations)
	}
	ourBundle := filled.Data["ca.crt"]
	if got := apiServiceCABundle(ctx, t, agg, ownerAPIService); !bytes.Equal(got, ourBundle) {
		t.Errorf("APIService %s: caBundle is not the filled Secret's ca.crt", ownerAPIService)
	}
	waitFor(t, 30*time.Second, func() error {
		return warningAbout(ctx, "default", "APIService", otherAPIService, certbootstrap.ReasonAPIServiceNotOurs)
	})

	// cert-manager takes the Secret over, as its issuing controller
	// writes: a server-side apply with force.
	issuer, err := pki.NewCA("cert-manager-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	names := certbootstrap.DNSNames(ownerService, ownerNS)
	kp, err := issuer.Issue(pki.Request{CommonName: names[2], DNSNames: names, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.KeyPEM(kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	apply, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": ownerSecret, "namespace": ownerNS, "annotations": map[string]string{
			"cert-manager.io/certificate-name": ownerService,
			"cert-manager.io/issuer-name":      "metrics-server-ca",
			"cert-manager.io/issuer-kind":      "Issuer",
			"cert-manager.io/issuer-group":     "cert-manager.io",
			"cert-manager.io/common-name":      names[2],
			"cert-manager.io/alt-names":        fmt.Sprint(names),
		}},
		"type": "kubernetes.io/tls",
		"data": map[string][]byte{"tls.crt": pki.CertPEM(kp.Cert), "tls.key": key, "ca.crt": pki.CertPEM(issuer.Cert)},
	})
	if err != nil {
		t.Fatal(err)
	}
	force := true
	if _, err := kube.CoreV1().Secrets(ownerNS).Patch(ctx, ownerSecret, types.ApplyPatchType, apply, metav1.PatchOptions{FieldManager: certManagerField, Force: &force}); err != nil {
		t.Fatalf("cert-manager's apply: %v", err)
	}
	taken, err := kube.CoreV1().Secrets(ownerNS).Get(ctx, ownerSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, kept := taken.Annotations[certbootstrap.AnnotationOwner]; !kept || len(taken.Data["ca.key"]) == 0 {
		t.Fatalf("the apply did not keep our annotation and ca.key (the case of issue 15): annotations %v, keys %v", taken.Annotations, secretKeys(taken.Data))
	}

	// The running bootstrap reports it, once, and writes nothing.
	waitFor(t, 30*time.Second, func() error {
		return warningAbout(ctx, metav1.NamespaceDefault, "APIService", ownerAPIService, certbootstrap.ReasonSecretNotOurs)
	})
	time.Sleep(10 * o.TLSBootstrap.Interval) // ten more syncs
	after, err := kube.CoreV1().Secrets(ownerNS).Get(ctx, ownerSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != taken.ResourceVersion {
		t.Errorf("the Secret was written after cert-manager took it over (resourceVersion %s, then %s)", taken.ResourceVersion, after.ResourceVersion)
	}
	leaf, err := firstCert(after.Data["tls.crt"])
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.Issuer.CommonName; got != issuer.Cert.Subject.CommonName {
		t.Errorf("the Secret's certificate is issued by %q, want cert-manager's %q", got, issuer.Cert.Subject.CommonName)
	}
	if got := apiServiceCABundle(ctx, t, agg, ownerAPIService); !bytes.Equal(got, ourBundle) {
		t.Errorf("APIService %s: caBundle changed after cert-manager took the Secret over", ownerAPIService)
	}
	if got := apiServiceCABundle(ctx, t, agg, otherAPIService); !bytes.Equal(got, theirBundle) {
		t.Errorf("APIService %s (backed by monitoring/prometheus-adapter): caBundle replaced", otherAPIService)
	}
}

// apiServiceCABundle returns the caBundle of APIService name.
func apiServiceCABundle(ctx context.Context, t *testing.T, agg apiregv1client.APIServicesGetter, name string) []byte {
	t.Helper()
	a, err := agg.APIServices().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a.Spec.CABundle
}

// warningAbout returns nil when namespace holds a Warning event of reason
// regarding the object of kind named name.
func warningAbout(ctx context.Context, namespace, kind, name, reason string) error {
	list, err := e.client.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, ev := range list.Items {
		if ev.Type == corev1.EventTypeWarning && ev.Reason == reason && ev.Regarding.Kind == kind && ev.Regarding.Name == name {
			logf("event on %s %s: %s", kind, name, ev.Note)
			return nil
		}
	}
	return fmt.Errorf("no Warning %s regarding %s %s in namespace %s (%d events there)", reason, kind, name, namespace, len(list.Items))
}

// firstCert parses the first PEM certificate of data.
func firstCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
