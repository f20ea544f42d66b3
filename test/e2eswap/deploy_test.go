package e2eswap

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// deployWithHPA creates namespace d.Namespace (waiting for its default
// ServiceAccount), the Deployment d and the HPA hpa (YAML, named as d), and
// removes the HPA, the Deployment and its pods when t ends: the pods'
// usage counts in their nodes, which other tests check.
func deployWithHPA(ctx context.Context, t *testing.T, d *appsv1.Deployment, hpa string) *appsv1.Deployment {
	t.Helper()
	c := e.suite.Client
	ns := d.Namespace
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := localcluster.Poll(ctx, "the default ServiceAccount", time.Second, time.Minute, func() error {
		_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	created, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := e.suite.Cluster.Kubectl(ctx, "delete", "hpa", d.Name, "-n", ns, "--ignore-not-found"); err != nil {
			t.Error(err)
		}
		background := metav1.DeletePropagationBackground
		if err := c.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
			t.Error(err)
		}
		if err := localcluster.Poll(ctx, "the pods of "+ns+"/"+d.Name+" gone", time.Second, 2*time.Minute, func() error {
			pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
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
	if _, err := e.suite.Cluster.KubectlAs(ctx, e.suite.Cluster.AdminKubeconfig, []byte(hpa), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	return created
}
