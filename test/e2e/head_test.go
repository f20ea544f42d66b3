package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var headPaths = []string{
	"/apis/metrics.k8s.io/v1beta1",
	"/apis/metrics.k8s.io/v1",
}

// TestHeadGroupVersion sends HEAD to the metrics API's group-versions
// through the kube-apiserver, as load-aware schedulers do for a health
// check, and expects 200 with no body, like the GET of the same path. The
// aggregator proxies these paths to us; the generic server's discovery
// route takes GET only and answered 405 before pkg/server/head.go.
func TestHeadGroupVersion(t *testing.T) {
	rc := client.Discovery().RESTClient()
	for _, path := range headPaths {
		t.Run(path, func(t *testing.T) {
			for _, verb := range []string{http.MethodGet, http.MethodHead} {
				code, body, err := send(rc, verb, path)
				if err != nil {
					t.Errorf("%s %s: %v (status %d)", verb, path, err, code)
					continue
				}
				if code != http.StatusOK {
					t.Errorf("%s %s: status %d, want %d", verb, path, code, http.StatusOK)
				}
				if verb == http.MethodHead && len(body) != 0 {
					t.Errorf("%s %s: %d bytes of body, want none", verb, path, len(body))
				}
				if verb == http.MethodGet && len(body) == 0 {
					t.Errorf("%s %s: empty body, want the APIResourceList", verb, path)
				}
			}
		})
	}
}

// TestHeadNeedsTheHeadVerb acts as an ordinary authenticated identity (a
// scheduler's ServiceAccount holds no more for discovery): the
// kube-apiserver authorizes HEAD on a non-resource path as the verb "head",
// which the default system:discovery role does not grant, so HEAD is
// refused where GET passes; a ClusterRole granting "head" on the paths lets
// it through to us.
func TestHeadNeedsTheHeadVerb(t *testing.T) {
	const user = "e2e-head-prober"
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	as, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := as.Discovery().RESTClient()
	for _, path := range headPaths {
		if code, _, err := send(rc, http.MethodGet, path); code != http.StatusOK {
			t.Errorf("GET %s as %s: status %d (%v), want 200 from system:discovery", path, user, code, err)
		}
		if code, _, _ := send(rc, http.MethodHead, path); code != http.StatusForbidden {
			t.Errorf("HEAD %s as %s without a grant: status %d, want 403 (does system:discovery grant head now?)", path, user, code)
		}
	}

	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-head"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"head"}, NonResourceURLs: []string{"/apis/metrics.k8s.io", "/apis/metrics.k8s.io/*"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-head"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	for _, path := range headPaths {
		// RBAC reaches the authorizers through informers: allow a moment.
		waitFor(t, 30*time.Second, func() error {
			code, body, err := send(rc, http.MethodHead, path)
			if code != http.StatusOK || len(body) != 0 {
				return fmt.Errorf("HEAD %s as %s with the grant: status %d, %d bytes (%v), want 200 and none", path, user, code, len(body), err)
			}
			return nil
		})
	}
}

// send makes one request with a 30 s limit and returns its status and body.
func send(rc rest.Interface, verb, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var code int
	body, err := rc.Verb(verb).AbsPath(path).Do(ctx).StatusCode(&code).Raw()
	return code, body, err
}
