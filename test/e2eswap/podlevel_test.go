package e2eswap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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
	// maxReplicas 1: the HPA then reports the utilization it computed
	// without the replica count moving under the test.
	hpa := resourceHPA(d, corev1.ResourceCPU, utilization(50), 1, 1)
	created := deployWithHPA(ctx, t, d, hpa)
	if created.Spec.Template.Spec.Resources == nil {
		t.Fatal("the kube-apiserver dropped spec.resources: the PodLevelResources feature is off")
	}
	var err error
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
