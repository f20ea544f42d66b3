package e2eswap

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: hpaNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := localcluster.Poll(ctx, "the default ServiceAccount", time.Second, time.Minute, func() error {
		_, err := c.CoreV1().ServiceAccounts(hpaNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
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
	if _, err := c.AppsV1().Deployments(hpaNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The pods' ephemeral storage counts in their nodes' root filesystems,
	// which the other tests check: remove them once done.
	t.Cleanup(func() {
		if _, err := e.suite.Cluster.Kubectl(ctx, "delete", "hpa", "eph", "-n", hpaNamespace); err != nil {
			t.Error(err)
		}
		background := metav1.DeletePropagationBackground
		if err := c.AppsV1().Deployments(hpaNamespace).Delete(ctx, "eph", metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
			t.Error(err)
		}
		if err := localcluster.Poll(ctx, "the HPA's pods gone", time.Second, 2*time.Minute, func() error {
			pods, err := c.CoreV1().Pods(hpaNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(pods.Items) > 0 {
				return fmt.Errorf("%d pods left", len(pods.Items))
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	hpa := `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: eph
  namespace: ` + hpaNamespace + `
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: eph
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource:
      name: ephemeral-storage
      target:
        type: AverageValue
        averageValue: 100Mi
`
	if _, err := e.suite.Cluster.KubectlAs(ctx, e.suite.Cluster.AdminKubeconfig, []byte(hpa), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
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
