package doctor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// TestRunOrderAndVerdict runs every check against a cluster whose server
// is stopped and whose ClusterRoleBinding is gone, and a node checker that
// must see the server found.
func TestRunOrderAndVerdict(t *testing.T) {
	refused := `failing or missing response from https://127.0.0.1:36221/apis/metrics.k8s.io/%s: Get "https://127.0.0.1:36221/apis/metrics.k8s.io/%[1]s": dial tcp 127.0.0.1:36221: connect: connection refused`
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{APIServiceResource: "APIServiceList"},
		apiServiceObject("v1beta1.metrics.k8s.io", "False", "FailedDiscoveryCheck", fmt.Sprintf(refused, "v1beta1"), nil),
		apiServiceObject("v1.metrics.k8s.io", "False", "FailedDiscoveryCheck", fmt.Sprintf(refused, "v1"), nil))
	client := fake.NewClientset(authConfigMap(map[string]string{
		"requestheader-client-ca-file":   caPEM(t, "front-proxy-ca", now.AddDate(5, 0, 0)),
		"requestheader-allowed-names":    `["front-proxy-client"]`,
		"requestheader-username-headers": `["X-Remote-User"]`,
		"requestheader-group-headers":    `["X-Remote-Group"]`,
	}), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server"}})
	reviewer(t, client, "system:serviceaccount:kube-system:metrics-server", []string{
		"create tokenreviews.authentication.k8s.io", "create subjectaccessreviews.authorization.k8s.io",
		"get configmaps extension-apiserver-authentication in kube-system",
		"list configmaps extension-apiserver-authentication in kube-system",
		"watch configmaps extension-apiserver-authentication in kube-system",
	}, nil)
	var nodeServer Server
	findings := Run(context.Background(), Config{
		Client: client, Dynamic: dyn, Namespace: "kube-system", Service: "metrics-server",
		ServiceAccount: "kube-system/metrics-server", CheckTimeout: 10 * time.Second, Now: func() time.Time { return now },
		Nodes: func(ctx context.Context, s Server) []Finding {
			if _, ok := ctx.Deadline(); ok {
				t.Errorf("the node checker got a deadline of the cluster checks")
			}
			nodeServer = s
			return []Finding{{Check: "node-tls", Target: "node/worker-3", Status: StatusOK, Message: "verified"}}
		},
	})
	var got []string
	for _, f := range findings {
		got = append(got, f.Check+" "+f.Target+" "+string(f.Status))
	}
	want := []string{
		"apiservice v1beta1.metrics.k8s.io fail",
		"apiservice v1.metrics.k8s.io fail",
		// No Deployment and no --server-args: the flags are assumed.
		"server service/kube-system/metrics-server warn",
		"aggregation-layer configmap/kube-system/extension-apiserver-authentication ok",
		"rbac serviceaccount/kube-system/metrics-server fail",
		"rbac serviceaccount/kube-system/metrics-server ok",
		"rbac serviceaccount/kube-system/metrics-server ok",
		"rbac serviceaccount/kube-system/metrics-server warn",
		"node-tls node/worker-3 ok",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !Failed(findings) {
		t.Error("Failed = false, want true")
	}
	if diff := cmp.Diff(Server{Namespace: "kube-system", Service: "metrics-server", ServiceAccount: "kube-system/metrics-server"}, nodeServer); diff != "" {
		t.Errorf("server given to the node checker (-want +got):\n%s", diff)
	}
}

// TestRunFollowsTheAPIServicesService: a chart release names the Service,
// Deployment and ServiceAccount after itself; unless told otherwise the
// doctor follows the Service v1beta1.metrics.k8s.io routes to and checks
// the RBAC of that Deployment's ServiceAccount, bootstrap included.
func TestRunFollowsTheAPIServicesService(t *testing.T) {
	spec := map[string]any{
		"service":  map[string]any{"namespace": "monitoring", "name": "ops-metrics-server", "port": int64(443)},
		"caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{APIServiceResource: "APIServiceList"},
		apiServiceObject("v1beta1.metrics.k8s.io", "True", "Passed", "all checks passed", spec),
		apiServiceObject("v1.metrics.k8s.io", "True", "Passed", "all checks passed", spec))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "ops-metrics-server"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/instance": "ops"}}}
	dep := deployment("ops-metrics-server", "ops-metrics-server", map[string]string{"app.kubernetes.io/instance": "ops"},
		corev1.Container{Name: "metrics-server", Args: []string{"--tls-bootstrap-secret=monitoring/ops-metrics-server-tls"}})
	client := fake.NewClientset(svc, dep, authConfigMap(map[string]string{
		"requestheader-client-ca-file":   caPEM(t, "front-proxy-ca", now.AddDate(5, 0, 0)),
		"requestheader-allowed-names":    `["front-proxy-client"]`,
		"requestheader-username-headers": `["X-Remote-User"]`,
		"requestheader-group-headers":    `["X-Remote-Group"]`,
	}))
	reviewer(t, client, "system:serviceaccount:monitoring:ops-metrics-server", nil, nil)
	for _, tt := range []struct {
		name       string
		serviceSet bool
		wantTarget string
		wantRBAC   int
	}{
		{"followed", false, "serviceaccount/monitoring/ops-metrics-server", 6},
		{"flags given", true, "serviceaccount/kube-system/metrics-server", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.serviceSet {
				client = fake.NewClientset()
				reviewer(t, client, "system:serviceaccount:kube-system:metrics-server", nil, nil)
			}
			findings := Run(context.Background(), Config{
				Client: client, Dynamic: dyn, Namespace: "kube-system", Service: "metrics-server", ServiceSet: tt.serviceSet,
				ServiceAccount: "kube-system/metrics-server", Now: func() time.Time { return now },
			})
			n := 0
			for _, f := range findings {
				if f.Check == "rbac" {
					n++
					if f.Target != tt.wantTarget {
						t.Errorf("rbac finding for %s, want %s", f.Target, tt.wantTarget)
					}
				}
			}
			if n != tt.wantRBAC {
				t.Errorf("%d rbac findings, want %d: %+v", n, tt.wantRBAC, findings)
			}
		})
	}
}
