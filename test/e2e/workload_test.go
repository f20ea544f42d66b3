package e2e

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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// app is a Deployment whose pods the fleet runs with a fixed usage per
// container.
type app struct {
	namespace, name string
	replicas        int32
	containers      []string
	milliCPU        int64
	memoryMi        int64
	requestMilliCPU int64
	requestMemoryMi int64
}

func (a app) usageAnnotation() string {
	return fmt.Sprintf("cpu=%dm,memory=%dMi", a.milliCPU, a.memoryMi)
}

func (a app) deployment() *appsv1.Deployment {
	labels := map[string]string{"app": a.name}
	var cs []corev1.Container
	for _, c := range a.containers {
		ctr := corev1.Container{Name: c, Image: "registry.invalid/" + c + ":1"}
		if a.requestMilliCPU > 0 {
			ctr.Resources.Requests = corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(a.requestMilliCPU, resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(a.requestMemoryMi<<20, resource.BinarySI),
			}
		}
		cs = append(cs, ctr)
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: a.namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &a.replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: a.usageAnnotation()}},
				Spec:       corev1.PodSpec{Containers: cs},
			},
		},
	}
}

// deploy creates the app (and its namespace) and waits for its pods to run.
func deploy(ctx context.Context, t *testing.T, a app) []corev1.Pod {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The namespace's default ServiceAccount comes from the controller
	// manager; pods cannot be created before it.
	waitFor(t, time.Minute, func() error {
		_, err := client.CoreV1().ServiceAccounts(a.namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if _, err := client.AppsV1().Deployments(a.namespace).Create(ctx, a.deployment(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return waitRunning(ctx, t, a.namespace, "app="+a.name, int(a.replicas))
}

// waitRunning waits until exactly n pods match and all run.
func waitRunning(ctx context.Context, t *testing.T, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	waitFor(t, 2*time.Minute, func() error {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		if running != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d pods running (%d listed)", running, n, len(list.Items))
		}
		pods = list.Items
		return nil
	})
	return pods
}

// waitFor polls check every second until it passes or limit passes.
func waitFor(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var err error
	for {
		if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", limit, err)
		}
		time.Sleep(time.Second)
	}
}

// table parses kubectl's column output: a header and rows of fields.
func table(out string) (header []string, rows [][]string) {
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 {
			header = f
			continue
		}
		rows = append(rows, f)
	}
	return header, rows
}

// milli parses "250m" or "1" cores into millicores; mi parses "64Mi".
func milli(t *testing.T, s string) int64 {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatalf("cpu %q: %v", s, err)
	}
	return q.MilliValue()
}

func mi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(strings.TrimSuffix(s, "Mi"), 10, 64)
	if err != nil {
		t.Fatalf("memory %q: %v", s, err)
	}
	return v
}

// closeCPU is true when got is within 5% (or 2m) of want.
func closeCPU(got, want int64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d*20 <= want || d <= 2
}

// metricsClient is the typed k8s.io/metrics clientset with the admin identity.
func metricsClient(t *testing.T) *metricsclient.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}
