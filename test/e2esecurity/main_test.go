package e2esecurity

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// addressBase is this package's loopback range (127.43.x.y), reserved for
// a fleet: it starts none.
const addressBase = 43

// The server's identity as manifests/base makes it, and the Secret the
// base ships for the serving-certificate bootstrap.
const (
	serverNamespace = "kube-system"
	serverAccount   = "metrics-server"
	serverUser      = "system:serviceaccount:" + serverNamespace + ":" + serverAccount
	shippedSecret   = "metrics-server-tls-bootstrap"
	// otherNamespace holds nothing of ours: what the server may do there
	// is what it may do in any namespace.
	otherNamespace = "tenant"
	// controlAccount is a ServiceAccount bound to nothing, in
	// otherNamespace: what it may do, every ServiceAccount may.
	controlAccount = "nobody"
)

// env is what every test shares, set up once by TestMain.
type env struct {
	suite   *localcluster.Suite
	repo    string
	cluster *localcluster.Cluster
	// admin is the cluster admin's client; server acts as the server's
	// ServiceAccount, control as controlAccount, each with a token of
	// its own.
	admin, server, control kubernetes.Interface
	// serverAPIServices acts as the server's ServiceAccount on
	// apiregistration.k8s.io.
	serverAPIServices aggregator.Interface
	// base is manifests/base as installed: everything but the Deployment.
	base []byte
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	// Main builds our binary (without the race detector: it never runs
	// here) and starts the control plane.
	os.Exit(localcluster.Main(m, "e2esecurity", nil, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s, repo: s.Repo, cluster: s.Cluster, admin: s.Client}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

// setUp installs manifests/base (its RBAC, ServiceAccount, Secret, Service
// and APIServices; the Deployment is never run) and a namespace and
// ServiceAccount that are nobody's, and makes a client for each identity.
func (e *env) setUp(ctx context.Context) error {
	var err error
	if e.base, err = e.cluster.RenderKustomize(ctx, filepath.Join(e.repo, "manifests/base")); err != nil {
		return err
	}
	if _, err := e.cluster.Install(ctx, "base", e.base); err != nil {
		return err
	}
	if _, err := e.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: otherNamespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := e.admin.CoreV1().ServiceAccounts(otherNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: controlAccount}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	cfg, err := e.configAs(ctx, serverNamespace, serverAccount)
	if err != nil {
		return err
	}
	if e.server, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if e.serverAPIServices, err = aggregator.NewForConfig(cfg); err != nil {
		return err
	}
	if cfg, err = e.configAs(ctx, otherNamespace, controlAccount); err != nil {
		return err
	}
	if e.control, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	logf("cluster and manifests/base ready in %v", e.suite.Elapsed())
	return nil
}

// configAs returns a client configuration authenticated as ServiceAccount
// ns/name by a token the TokenRequest API issued for it (what a pod of
// that ServiceAccount mounts), verifying the kube-apiserver with the
// cluster CA.
func (e *env) configAs(ctx context.Context, ns, name string) (*rest.Config, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	tr, err := e.admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("a token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	cfg := &rest.Config{
		Host:            e.cluster.APIServer,
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: e.cluster.PKI.Path(pki.ClusterCA + ".crt")},
		Timeout:         30 * time.Second,
	}
	return cfg, nil
}
