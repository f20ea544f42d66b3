package e2esecurity

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// dryRun asks the kube-apiserver to authorize, admit and validate a write
// without storing it: an allowed write leaves the cluster as it was.
var dryRun = []string{metav1.DryRunAll}

// TestServerIdentityBoundaries acts as the server's ServiceAccount, with a
// real token, and tries what someone who stole that token from the pod
// would try. Each refusal must be a 403 from the kube-apiserver's
// authorizer (not a 404 or a validation error that another request
// could get past); each allowed request is something the server does,
// sent as a dry run.
func TestServerIdentityBoundaries(t *testing.T) {
	ctx := context.Background()
	waitPolicyInForce(ctx, t)
	// A Secret of someone else in kube-system, for the server to fail to
	// read.
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: serverNamespace}, StringData: map[string]string{"password": "hunter2"}}
	if _, err := e.admin.CoreV1().Secrets(serverNamespace).Create(ctx, other, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	secret := func(ns, name string, typ corev1.SecretType, data map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: typ, StringData: data}
	}
	// A bootstrap token: with kubeadm's bindings its holder may create
	// node client CSRs, so it is a node's identity in the making.
	bootstrapToken := secret(serverNamespace, "bootstrap-token-abcdef", "bootstrap.kubernetes.io/token", map[string]string{
		"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
		"auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
	})
	// An event as the server writes them: about a Node, which only
	// namespace default may hold; elsewhere about a pod of that
	// namespace, so that only the authorizer can refuse it.
	nodeEvent := func(ns string) *eventsv1.Event {
		regarding := corev1.ObjectReference{Kind: "Node", Name: "node-1", APIVersion: "v1"}
		if ns != "default" {
			regarding = corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "pod-1", APIVersion: "v1"}
		}
		return &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "e2esecurity-", Namespace: ns},
			EventTime:  metav1.NowMicro(), ReportingController: "kubemetrics.io/metrics-server", ReportingInstance: "e2esecurity",
			Action: "Scrape", Reason: "MetricsScrapeFailed", Type: corev1.EventTypeWarning, Note: "probe",
			Regarding: regarding,
		}
	}
	s, sa := e.server.CoreV1(), e.server
	mergePatch := []byte(`{"metadata":{"annotations":{"e2esecurity/probe":"x"}}}`)
	for _, tc := range []struct {
		name    string
		allowed bool
		do      func() error
	}{
		// Defect 1: no Secret at all can be created, least of all a
		// bootstrap token.
		{"create a bootstrap-token Secret in kube-system", false, func() error {
			_, err := s.Secrets(serverNamespace).Create(ctx, bootstrapToken, metav1.CreateOptions{})
			return err
		}},
		{"create an Opaque Secret in kube-system", false, func() error {
			_, err := s.Secrets(serverNamespace).Create(ctx, secret(serverNamespace, "planted", corev1.SecretTypeOpaque, map[string]string{"k": "v"}), metav1.CreateOptions{})
			return err
		}},
		{"create the shipped Secret's name again (it exists: authorization comes first)", false, func() error {
			_, err := s.Secrets(serverNamespace).Create(ctx, secret(serverNamespace, shippedSecret, corev1.SecretTypeOpaque, nil), metav1.CreateOptions{})
			return err
		}},
		{"create a Secret in default", false, func() error {
			_, err := s.Secrets("default").Create(ctx, secret("default", "planted", corev1.SecretTypeOpaque, map[string]string{"k": "v"}), metav1.CreateOptions{})
			return err
		}},
		{"create a Secret in another namespace", false, func() error {
			_, err := s.Secrets(otherNamespace).Create(ctx, secret(otherNamespace, "planted", corev1.SecretTypeOpaque, map[string]string{"k": "v"}), metav1.CreateOptions{})
			return err
		}},
		// The shipped Secret, and only it.
		{"get the shipped Secret", true, func() error {
			_, err := s.Secrets(serverNamespace).Get(ctx, shippedSecret, metav1.GetOptions{})
			return err
		}},
		{"update the shipped Secret", true, func() error {
			cur, err := e.admin.CoreV1().Secrets(serverNamespace).Get(ctx, shippedSecret, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Secrets(serverNamespace).Update(ctx, cur, metav1.UpdateOptions{DryRun: dryRun})
			return err
		}},
		{"patch the shipped Secret (only update is granted)", false, func() error {
			_, err := s.Secrets(serverNamespace).Patch(ctx, shippedSecret, types.MergePatchType, mergePatch, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"delete the shipped Secret", false, func() error {
			return s.Secrets(serverNamespace).Delete(ctx, shippedSecret, metav1.DeleteOptions{DryRun: dryRun})
		}},
		{"get another Secret in kube-system", false, func() error {
			_, err := s.Secrets(serverNamespace).Get(ctx, other.Name, metav1.GetOptions{})
			return err
		}},
		{"list Secrets in kube-system", false, func() error {
			_, err := s.Secrets(serverNamespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		// Nothing else that turns into another identity.
		{"create a token of another ServiceAccount", false, func() error {
			_, err := s.ServiceAccounts(otherNamespace).CreateToken(ctx, controlAccount, tokenRequest(), metav1.CreateOptions{})
			return err
		}},
		{"create a token of its own ServiceAccount", false, func() error {
			_, err := s.ServiceAccounts(serverNamespace).CreateToken(ctx, serverAccount, tokenRequest(), metav1.CreateOptions{})
			return err
		}},
		{"create a pod in kube-system", false, func() error {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: serverNamespace}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1"}}}}
			_, err := s.Pods(serverNamespace).Create(ctx, p, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"create a CertificateSigningRequest", false, func() error {
			csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "planted"}, Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: []byte("not a CSR"), SignerName: "kubernetes.io/kube-apiserver-client-kubelet", Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}}}
			_, err := sa.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"impersonate a node", false, func() error {
			cfg, err := e.configAs(ctx, serverNamespace, serverAccount)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:node-1", Groups: []string{"system:nodes"}}
			as, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = as.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		}},
		// Defect 8: events in default only, where a Node's events live.
		{"create an event in default", true, func() error {
			_, err := sa.EventsV1().Events("default").Create(ctx, nodeEvent("default"), metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"create an event in kube-system", false, func() error {
			_, err := sa.EventsV1().Events(serverNamespace).Create(ctx, nodeEvent(serverNamespace), metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"create an event in another namespace", false, func() error {
			_, err := sa.EventsV1().Events(otherNamespace).Create(ctx, nodeEvent(otherNamespace), metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		// The APIServices: ours by name, no other, and of ours only the
		// caBundle (the ValidatingAdmissionPolicy of tls-bootstrap.yaml).
		{"patch the caBundle of APIService v1beta1.metrics.k8s.io, as the bootstrap does", true, func() error {
			_, err := e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1beta1.metrics.k8s.io", types.MergePatchType, caBundlePatch(t), metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"point APIService v1beta1.metrics.k8s.io at another Service", false, func() error {
			p := []byte(`{"spec":{"service":{"namespace":"tenant","name":"thief","port":443}}}`)
			_, err := e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1beta1.metrics.k8s.io", types.MergePatchType, p, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"turn off TLS verification of APIService v1beta1.metrics.k8s.io", false, func() error {
			p := []byte(`{"spec":{"caBundle":null,"insecureSkipTLSVerify":true}}`)
			_, err := e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1beta1.metrics.k8s.io", types.MergePatchType, p, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"annotate APIService v1.metrics.k8s.io (cert-manager.io/inject-ca-from would hand it to a CA injector)", false, func() error {
			_, err := e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1.metrics.k8s.io", types.MergePatchType, mergePatch, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"patch APIService v1.apps, which is not in its ClusterRole", false, func() error {
			_, err := e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1.apps", types.MergePatchType, mergePatch, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"patch APIService v1beta1.custom.metrics.k8s.io (another provider's, absent here)", false, func() error {
			_, err := e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1beta1.custom.metrics.k8s.io", types.MergePatchType, mergePatch, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"delete APIService v1beta1.metrics.k8s.io", false, func() error {
			return e.serverAPIServices.ApiregistrationV1().APIServices().Delete(ctx, "v1beta1.metrics.k8s.io", metav1.DeleteOptions{DryRun: dryRun})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.allowed && err != nil:
				t.Errorf("as %s: %v; the server needs this", serverUser, err)
			case !tc.allowed && err == nil:
				t.Errorf("as %s: allowed, want 403 Forbidden", serverUser)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Errorf("as %s: %v, want 403 Forbidden from the authorizer", serverUser, err)
			}
		})
	}
}

func tokenRequest() *authenticationv1.TokenRequest {
	return &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(600))}}
}

// caBundlePatch is the bootstrap's patch of an APIService (pkg/certbootstrap):
// a CA as caBundle and verification on, in one merge patch.
func caBundlePatch(t *testing.T) []byte {
	t.Helper()
	ca, err := pki.NewCA("e2esecurity-ca")
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(map[string]any{"spec": map[string]any{"caBundle": pki.CertPEM(ca.Cert), "insecureSkipTLSVerify": false}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPolicyInForce waits until the ValidatingAdmissionPolicy of
// tls-bootstrap.yaml refuses the server's ServiceAccount a change of an
// APIService's spec.service. The kube-apiserver loads a new policy
// asynchronously (its admission plugin watches policies), so in the first
// second after an install a patch it refuses may still pass; CI once ran
// the boundary cases 0.9 s after the install and saw three of them pass.
// A real install has the same short window.
func waitPolicyInForce(ctx context.Context, t *testing.T) {
	t.Helper()
	p := []byte(`{"spec":{"service":{"namespace":"tenant","name":"thief","port":443}}}`)
	var err error
	for i := 0; i < 60; i++ {
		_, err = e.serverAPIServices.ApiregistrationV1().APIServices().Patch(ctx, "v1beta1.metrics.k8s.io", types.MergePatchType, p,
			metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(err) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the admission policy is not in force 30 s after the install: a dry-run patch of spec.service as the server gave %v", err)
}
