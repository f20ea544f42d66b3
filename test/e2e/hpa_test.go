package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

const hpaNamespace = "e2e-hpa"

func applyHPA(t *testing.T, name, metric string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: %s
  namespace: %s
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: %s
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
%s
`, name, hpaNamespace, name, metric)
	if _, err := cluster.KubectlAs(context.Background(), cluster.AdminKubeconfig, []byte(manifest), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// setLoad changes the usage of the app's pods, new and existing, by
// rolling out a new template.
func setLoad(t *testing.T, name, usage string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, fleet.UsageAnnotation, usage)
	if _, err := client.AppsV1().Deployments(hpaNamespace).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitReplicas waits until the HPA asks for a replica count that ok accepts.
func waitReplicas(t *testing.T, name string, limit time.Duration, ok func(int) bool, want string) {
	t.Helper()
	waitFor(t, limit, func() error {
		out, err := cluster.Kubectl(context.Background(), "get", "hpa", name, "-n", hpaNamespace, "-o", "jsonpath={.status.desiredReplicas} {.status.currentMetrics}")
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.Fields(out + " x")[0])
		if err != nil {
			return fmt.Errorf("no desired replicas yet: %q", out)
		}
		if !ok(n) {
			return fmt.Errorf("HPA %s wants %d replicas (%s), want %s", name, n, out, want)
		}
		return nil
	})
}

func TestHPAScalesOnCPUUtilization(t *testing.T) {
	ctx := context.Background()
	a := app{namespace: hpaNamespace, name: "cpu-app", replicas: 1, containers: []string{"app"}, milliCPU: 100, memoryMi: 64, requestMilliCPU: 500, requestMemoryMi: 128}
	deploy(ctx, t, a)
	applyHPA(t, a.name, `      name: cpu
      target:
        type: Utilization
        averageUtilization: 50`)
	// 100m of 500m is 20%: stays at one replica once metrics flow.
	waitReplicas(t, a.name, 2*time.Minute, func(n int) bool { return n == 1 }, "1 at 20% load")

	setLoad(t, a.name, "cpu=450m,memory=64Mi") // 90% of the request
	waitReplicas(t, a.name, 3*time.Minute, func(n int) bool { return n >= 3 }, "at least 3 at 90% load")

	setLoad(t, a.name, "cpu=20m,memory=64Mi") // 4%
	waitReplicas(t, a.name, 3*time.Minute, func(n int) bool { return n == 1 }, "back to 1 at 4% load")
}

func TestHPAScalesOnMemoryAverageValue(t *testing.T) {
	ctx := context.Background()
	a := app{namespace: hpaNamespace, name: "mem-app", replicas: 1, containers: []string{"app"}, milliCPU: 20, memoryMi: 200, requestMilliCPU: 100, requestMemoryMi: 256}
	deploy(ctx, t, a)
	applyHPA(t, a.name, `      name: memory
      target:
        type: AverageValue
        averageValue: 100Mi`)
	// 200Mi per pod against 100Mi: the HPA adds replicas.
	waitReplicas(t, a.name, 3*time.Minute, func(n int) bool { return n >= 2 }, "at least 2 at twice the target")
}
