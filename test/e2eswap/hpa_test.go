package e2eswap

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// hpaNamespace holds the HPA's Deployment, apart from the pods the other
// tests count.
const hpaNamespace = "eph-hpa"

// TestHPAOnEphemeralStorage: the HPA controller of kube-controller-manager
// 1.37 reads a Resource metric named ephemeral-storage from the
// containers' usage. Without --kubelet-ephemeral-storage it finds the key
// in no container, reports the metric missing (ScalingActive False,
// FailedGetResourceMetric) and keeps one replica; with it, 300Mi a pod
// against an averageValue of 100Mi scales the Deployment up.
func TestHPAOnEphemeralStorage(t *testing.T) {
	ctx := context.Background()
	c := e.suite.Client
	one := int32(1)
	labels := map[string]string{"app": "eph"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "eph", Namespace: hpaNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: "cpu=20m,memory=64Mi,ephemeral-storage=300Mi"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
			},
		},
	}
	averageValue := resource.MustParse("100Mi")
	hpa := resourceHPA(d, corev1.ResourceEphemeralStorage, autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &averageValue}, 1, 4)
	deployWithHPA(ctx, t, d, hpa)
	status := func() (string, error) {
		return e.suite.Cluster.Kubectl(ctx, "get", "hpa", "eph", "-n", hpaNamespace, "-o",
			`jsonpath={.status.desiredReplicas} {.status.conditions[?(@.type=="ScalingActive")].status} {.status.conditions[?(@.type=="ScalingActive")].reason} {.status.currentMetrics}`)
	}

	startServer(t, "resource")
	// The HPA runs every 5 s here; the server serves within seconds.
	if err := localcluster.Poll(ctx, "the HPA missing its metric", time.Second, 2*time.Minute, func() error {
		out, err := status()
		if err != nil {
			return err
		}
		if !strings.Contains(out, "False FailedGetResourceMetric") {
			return fmt.Errorf("HPA status %q, want ScalingActive False FailedGetResourceMetric", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if dep, err := c.AppsV1().Deployments(hpaNamespace).Get(ctx, "eph", metav1.GetOptions{}); err != nil || *dep.Spec.Replicas != 1 {
		t.Fatalf("without the flag the Deployment has %v replicas (%v), want 1", dep.Spec.Replicas, err)
	}
	e.suite.Cluster.StopMetricsServer()

	startServer(t, "resource", "--kubelet-ephemeral-storage")
	if err := localcluster.Poll(ctx, "the HPA scaling on ephemeral storage", time.Second, 3*time.Minute, func() error {
		out, err := status()
		if err != nil {
			return err
		}
		f := strings.Fields(out + " x x x")
		n, _ := strconv.Atoi(f[0])
		if f[1] != "True" || n < 3 || !strings.Contains(out, `"name":"ephemeral-storage"`) {
			return fmt.Errorf("HPA status %q, want at least 3 replicas on an active ephemeral-storage metric", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
