package e2eswap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// podLevelNamespace holds the pod-level HPA's Deployment.
const podLevelNamespace = "pod-level"

// TestHPAOnPodLevelRequests: pods whose CPU request is set for the pod
// (KEP-2837, spec.resources) and not for their two containers. The HPA of
// kube-controller-manager 1.37 divides the sum of the containers' usage in
// PodMetrics by the pod-level request (replica_calculator.go,
// calculatePodRequests), so serving containers only is enough: two
// containers at 40m under a pod request of 100m are 80 % to it, which
// this test reads in the HPA's status. (The kubelet's pod-level series
// also counts the pod's own cgroup beyond its containers; PodMetrics has
// no field for it, and the HPA sums containers.)
func TestHPAOnPodLevelRequests(t *testing.T) {
	ctx := context.Background()
	c := e.suite.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: podLevelNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := localcluster.Poll(ctx, "the default ServiceAccount", time.Second, time.Minute, func() error {
		_, err := c.CoreV1().ServiceAccounts(podLevelNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	labels := map[string]string{"app": "pod-level"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-level", Namespace: podLevelNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: "cpu=40m,memory=64Mi"}},
				Spec: corev1.PodSpec{
					Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
					Containers: []corev1.Container{
						{Name: "app", Image: "registry.invalid/app:1"},
						{Name: "sidecar", Image: "registry.invalid/sidecar:1"},
					},
				},
			},
		},
	}
	created, err := c.AppsV1().Deployments(podLevelNamespace).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.Template.Spec.Resources == nil {
		t.Fatal("the kube-apiserver dropped spec.resources: the PodLevelResources feature is off")
	}
	t.Cleanup(func() {
		if _, err := e.suite.Cluster.Kubectl(ctx, "delete", "hpa", "pod-level", "-n", podLevelNamespace); err != nil {
			t.Error(err)
		}
		background := metav1.DeletePropagationBackground
		if err := c.AppsV1().Deployments(podLevelNamespace).Delete(ctx, "pod-level", metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
			t.Error(err)
		}
		if err := localcluster.Poll(ctx, "the pod-level pods gone", time.Second, 2*time.Minute, func() error {
			pods, err := c.CoreV1().Pods(podLevelNamespace).List(ctx, metav1.ListOptions{})
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
	// maxReplicas 1: the HPA then reports the utilization it computed
	// without the replica count moving under the test.
	hpa := `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: pod-level
  namespace: ` + podLevelNamespace + `
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: pod-level
  minReplicas: 1
  maxReplicas: 1
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
`
	if _, err := e.suite.Cluster.KubectlAs(ctx, e.suite.Cluster.AdminKubeconfig, []byte(hpa), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	startServer(t, "resource")
	var out string
	if err := localcluster.Poll(ctx, "the HPA's CPU utilization against the pod-level request", time.Second, 3*time.Minute, func() error {
		out, err = e.suite.Cluster.Kubectl(ctx, "get", "hpa", "pod-level", "-n", podLevelNamespace, "-o",
			`jsonpath={.status.currentMetrics[0].resource.current.averageUtilization} {.status.currentMetrics[0].resource.current.averageValue} {.status.conditions[?(@.type=="ScalingActive")].status}`)
		if err != nil {
			return err
		}
		if f := strings.Fields(out); len(f) != 3 || f[0] != "80" || f[1] != "80m" || f[2] != "True" {
			return fmt.Errorf("HPA status %q, want utilization 80 (2 x 40m of 100m), average 80m, ScalingActive True", out)
		}
		return nil
	}); err != nil {
		desc, _ := e.suite.Cluster.Kubectl(ctx, "describe", "hpa", "pod-level", "-n", podLevelNamespace)
		t.Fatalf("%v\n%s", err, desc)
	}
	t.Logf("HPA on pods with a pod-level request of 100m and two containers at 40m: %s", out)
}
