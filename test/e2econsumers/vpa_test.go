package e2econsumers

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
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

// The VPA test's workload: a Deployment of two pods on vpaNode whose one
// container, app, uses vpaUsage (the fleet's load model).
const (
	vpaNamespace = "vpa"
	vpaUsage     = "cpu=300m,memory=400Mi,swap=32Mi,ephemeral-storage=50Mi"
	vpaReplicas  = 2
)

// The recommender's defaults of v1.8.1 (pkg/recommender/config): the
// target is the 90th percentile of its usage histogram, whose buckets
// grow by 5 %, and the end of the percentile's bucket, plus a 15 % safety
// margin (--recommendation-margin-fraction).
const (
	vpaMargin = 1.15
	// vpaBucketSlack bounds a histogram bucket's end over any sample in
	// it at these magnitudes (buckets of 5 % and more: about 8 % at 0.3
	// cores, 7 % at 400 MiB, as their first buckets are 0.01 cores and
	// 10 MB).
	vpaBucketSlack = 1.10
)

// vpaObject is the VerticalPodAutoscaler of the Deployment app: it only
// recommends (updateMode Off), which is what the recommender alone serves.
const vpaObject = `apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata:
  name: app
  namespace: ` + vpaNamespace + `
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: app
  updatePolicy:
    updateMode: "Off"
`

// vpaStatus is what the test reads of a VerticalPodAutoscaler.
type vpaStatus struct {
	Status struct {
		Recommendation *struct {
			ContainerRecommendations []struct {
				ContainerName  string              `json:"containerName"`
				Target         corev1.ResourceList `json:"target"`
				LowerBound     corev1.ResourceList `json:"lowerBound"`
				UpperBound     corev1.ResourceList `json:"upperBound"`
				UncappedTarget corev1.ResourceList `json:"uncappedTarget"`
			} `json:"containerRecommendations"`
		} `json:"recommendation"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

// TestVPARecommendation: the VPA recommender v1.8.1, with its project's
// CRDs and RBAC, running as its ServiceAccount, reads the usage of a
// Deployment's pods from our server (metrics.k8s.io/v1beta1 PodMetrics
// through the kube-apiserver) and writes a recommendation into the
// VerticalPodAutoscaler whose target for the container is the usage we
// serve plus its margin: at or above the usage, within a histogram bucket
// of usage times 1.15. The containers are served with swap and
// ephemeral-storage beside cpu and memory, which it passes over.
func TestVPARecommendation(t *testing.T) {
	ctx := context.Background()
	c := e.suite.Client
	dir, err := moduleDir(ctx, "vpa-recommender", vpaModule, vpaVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vpa-v1-crd-gen.yaml", "vpa-rbac.yaml"} {
		if err := applyFile(ctx, filepath.Join(dir, "deploy", f), "kube-system"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.suite.Cluster.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/verticalpodautoscalers.autoscaling.k8s.io", "crd/verticalpodautoscalercheckpoints.autoscaling.k8s.io"); err != nil {
		t.Fatal(err)
	}
	if err := createNamespace(ctx, vpaNamespace); err != nil {
		t.Fatal(err)
	}

	replicas := int32(vpaReplicas)
	labels := map[string]string{"app": "app"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: vpaNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: vpaUsage}},
				Spec: corev1.PodSpec{NodeName: e.nodeNames[vpaNode], Containers: []corev1.Container{{
					Name: "app", Image: "registry.invalid/app:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
				}}},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(vpaNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitRunning(ctx, vpaNamespace, vpaReplicas); err != nil {
		t.Fatal(err)
	}
	// Our server serves a pod once it has two samples of it; without
	// them the recommender would recommend its minimums (25m, 250Mi).
	if err := localcluster.Poll(ctx, "the pods' metrics", time.Second, 3*resolution+30*time.Second, func() error {
		served, err := servedContainers(ctx, vpaNamespace, "app")
		if err != nil {
			return err
		}
		if len(served) != vpaReplicas {
			return fmt.Errorf("%d of %d pods served", len(served), vpaReplicas)
		}
		for pod, u := range served {
			if !slices.Equal(u.keys, allKeys) {
				return fmt.Errorf("pod %s: we serve %v, want %v", pod, u.keys, allKeys)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.suite.Cluster.KubectlAs(ctx, e.suite.Cluster.AdminKubeconfig, []byte(vpaObject), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}

	kubeconfig, err := serviceAccountKubeconfig(ctx, "kube-system", "vpa-recommender")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	rec := startProcess(t, "vpa-recommender", e.vpaRecommender,
		"--kubeconfig="+kubeconfig,
		"--recommender-interval=10s",
		"--storage=checkpoint",
		"--memory-saver=true",
		"--leader-elect=false",
		"--address=127.0.0.1:"+strconv.Itoa(port),
		"--v=2")

	var target, lower, upper corev1.ResourceList
	if err := localcluster.Poll(ctx, "the VPA's recommendation", 2*time.Second, 3*time.Minute, func() error {
		if err := rec.alive(); err != nil {
			return localcluster.Permanent(err)
		}
		out, err := e.suite.Cluster.Kubectl(ctx, "get", "verticalpodautoscaler", "app", "-n", vpaNamespace, "-o", "json")
		if err != nil {
			return err
		}
		var v vpaStatus
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return err
		}
		if v.Status.Recommendation == nil {
			return fmt.Errorf("no recommendation yet; conditions %+v", v.Status.Conditions)
		}
		for _, r := range v.Status.Recommendation.ContainerRecommendations {
			if r.ContainerName == "app" && r.Target.Cpu().MilliValue() > 0 && r.Target.Memory().Value() > 0 {
				target, lower, upper = r.Target, r.LowerBound, r.UpperBound
				return nil
			}
		}
		return fmt.Errorf("no target for container app in %+v", v.Status.Recommendation.ContainerRecommendations)
	}); err != nil {
		t.Fatalf("%v\nthe recommender's log ends:\n%s", err, rec.tail(40))
	}
	logf("VPA recommendation after %v: target cpu %v memory %v, lower bound cpu %v memory %v, upper bound cpu %v memory %v",
		time.Since(began).Round(time.Second), target.Cpu(), target.Memory(), lower.Cpu(), lower.Memory(), upper.Cpu(), upper.Memory())

	// What we serve of the container, in each pod: the recommender's samples.
	served, err := servedContainers(ctx, vpaNamespace, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(served) != vpaReplicas {
		t.Fatalf("we serve container app in %d pods, want %d: %v", len(served), vpaReplicas, served)
	}
	fleetCPU, fleetMemory, err := fleet.ParseUsage(vpaUsage)
	if err != nil {
		t.Fatal(err)
	}
	var maxCPU, maxMemory int64
	for pod, u := range served {
		logf("served: pod %s container app cpu %dm memory %d (keys %v); the fleet reports cpu %dm memory %d", pod, u.milliCPU, u.memory, u.keys, fleetCPU, fleetMemory)
		if !near(u.milliCPU, fleetCPU) || u.memory != fleetMemory {
			t.Errorf("pod %s container app: we serve cpu %dm memory %d, the fleet reports cpu %dm memory %d", pod, u.milliCPU, u.memory, fleetCPU, fleetMemory)
		}
		maxCPU, maxMemory = max(maxCPU, u.milliCPU), max(maxMemory, u.memory)
	}
	check := func(what string, got, usage int64, unit string) {
		lo := int64(float64(usage) * vpaMargin)
		hi := int64(float64(usage)*vpaMargin*vpaBucketSlack) + 1
		if got < usage || got < lo || got > hi {
			t.Errorf("VPA target %s = %d%s; we serve %d%s: want within [%d, %d] (usage × %.2f, up to a histogram bucket more)",
				what, got, unit, usage, unit, lo, hi, vpaMargin)
		}
	}
	check("cpu", target.Cpu().MilliValue(), maxCPU, "m")
	check("memory", target.Memory().Value(), maxMemory, " bytes")

	// --storage=checkpoint: the recommender saves its histograms.
	if err := localcluster.Poll(ctx, "the VPA's checkpoint", 2*time.Second, time.Minute, func() error {
		out, err := e.suite.Cluster.Kubectl(ctx, "get", "verticalpodautoscalercheckpoints", "-n", vpaNamespace,
			"-o", "jsonpath={range .items[*]}{.spec.vpaObjectName}/{.spec.containerName} {.status.totalSamplesCount}{\"\\n\"}{end}")
		if err != nil {
			return err
		}
		if out == "" {
			return fmt.Errorf("no checkpoint")
		}
		logf("VPA checkpoints (object/container samples): %s", strings.TrimSpace(out))
		return nil
	}); err != nil {
		t.Error(err)
	}
}
