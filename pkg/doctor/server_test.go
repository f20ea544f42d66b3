package doctor

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func deployment(name, sa string, labels map[string]string, containers ...corev1.Container) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: name}}
	d.Spec.Template.Labels = labels
	d.Spec.Template.Spec.ServiceAccountName = sa
	d.Spec.Template.Spec.Containers = containers
	return d
}

func TestFindServer(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "metrics"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": "metrics-server", "app.kubernetes.io/instance": "ops"}}}
	chart := deployment("ops-metrics-server", "ops-metrics-server",
		map[string]string{"app.kubernetes.io/name": "metrics-server", "app.kubernetes.io/instance": "ops", "pod-template-hash": "7d9c"},
		corev1.Container{Name: "sidecar", Args: []string{"--sidecar"}},
		corev1.Container{Name: "metrics-server", Command: []string{"/metrics-server"}, Args: []string{"--secure-port=10250", "--tls-bootstrap-secret=monitoring/ops-tls"}})
	other := deployment("grafana", "grafana", map[string]string{"app.kubernetes.io/name": "grafana"}, corev1.Container{Name: "grafana"})
	byName := deployment("metrics", "", map[string]string{"k8s-app": "metrics"}, corev1.Container{Name: "server", Args: []string{"--v=2"}})
	tests := []struct {
		name    string
		objects []runtime.Object
		saSet   bool
		want    Server
	}{
		{"by the Service's selector", []runtime.Object{svc, other, chart}, false, Server{Namespace: "monitoring", Service: "metrics",
			ServiceAccount: "monitoring/ops-metrics-server", Deployment: "ops-metrics-server",
			Args: []string{"/metrics-server", "--secure-port=10250", "--tls-bootstrap-secret=monitoring/ops-tls"}}},
		{"service account given", []runtime.Object{svc, chart}, true, Server{Namespace: "monitoring", Service: "metrics",
			ServiceAccount: "kube-system/metrics-server", Deployment: "ops-metrics-server",
			Args: []string{"/metrics-server", "--secure-port=10250", "--tls-bootstrap-secret=monitoring/ops-tls"}}},
		{"by name, first container, default account", []runtime.Object{byName}, false, Server{Namespace: "monitoring", Service: "metrics",
			ServiceAccount: "monitoring/default", Deployment: "metrics", Args: []string{"--v=2"}}},
		{"outside the cluster", []runtime.Object{other}, false, Server{Namespace: "monitoring", Service: "metrics", ServiceAccount: "kube-system/metrics-server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindServer(context.Background(), fake.NewClientset(tt.objects...), "monitoring", "metrics", "kube-system/metrics-server", tt.saSet)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FindServer (-want +got):\n%s", diff)
			}
		})
	}
}
