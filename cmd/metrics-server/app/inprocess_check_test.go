package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

func checkV1(ctx context.Context, c *metricsclient.Clientset, wantNodes map[string]usage, wantPods map[string]map[string]usage) error {
	nodes, err := c.MetricsV1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list v1 nodes: %w", err)
	}
	gotNodes := map[string]usage{}
	for _, n := range nodes.Items {
		gotNodes[n.Name] = usageOf(n.Usage)
		if n.Window.Duration <= 0 {
			return fmt.Errorf("node %s window %v", n.Name, n.Window.Duration)
		}
	}
	if err := compareUsage("v1 nodes", wantNodes, gotNodes); err != nil {
		return err
	}
	one, err := c.MetricsV1().NodeMetricses().Get(ctx, "node-resource", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get v1 node: %w", err)
	}
	if err := compareUsage("v1 node get", map[string]usage{"node-resource": wantNodes["node-resource"]}, map[string]usage{one.Name: usageOf(one.Usage)}); err != nil {
		return err
	}
	pods, err := c.MetricsV1().PodMetricses("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list v1 pods: %w", err)
	}
	got := map[string]map[string]usage{}
	for _, p := range pods.Items {
		cs := map[string]usage{}
		for _, ctr := range p.Containers {
			cs[ctr.Name] = usageOf(ctr.Usage)
		}
		got[p.Namespace+"/"+p.Name] = cs
	}
	if err := comparePods("v1 pods", wantPods, got); err != nil {
		return err
	}
	sel, err := c.MetricsV1().PodMetricses("ns1").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return fmt.Errorf("list v1 pods by label: %w", err)
	}
	var names []string
	for _, p := range sel.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "ns1/web-1,ns1/web-2" {
		return fmt.Errorf("v1 pods with app=web in ns1: %s", names)
	}
	return nil
}

func checkV1beta1(ctx context.Context, c *metricsclient.Clientset, wantNodes map[string]usage, wantPods map[string]map[string]usage) error {
	nodes, err := c.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list v1beta1 nodes: %w", err)
	}
	gotNodes := map[string]usage{}
	for _, n := range nodes.Items {
		gotNodes[n.Name] = usageOf(n.Usage)
	}
	if err := compareUsage("v1beta1 nodes", wantNodes, gotNodes); err != nil {
		return err
	}
	// The HPA's call: one namespaced list by label selector.
	pods, err := c.MetricsV1beta1().PodMetricses("ns2").List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
	if err != nil {
		return fmt.Errorf("list v1beta1 pods: %w", err)
	}
	got := map[string]map[string]usage{}
	for _, p := range pods.Items {
		cs := map[string]usage{}
		for _, ctr := range p.Containers {
			cs[ctr.Name] = usageOf(ctr.Usage)
		}
		got[p.Namespace+"/"+p.Name] = cs
	}
	return comparePods("v1beta1 pods in ns2", map[string]map[string]usage{"ns2/db-0": wantPods["ns2/db-0"]}, got)
}

func usageOf(rl corev1.ResourceList) usage {
	return usage{MilliCPU: rl.Cpu().MilliValue(), Memory: rl.Memory().Value()}
}

// compareUsage wants the same keys, CPU within 1% and memory exact.
func compareUsage(what string, want, got map[string]usage) error {
	if len(want) != len(got) {
		return fmt.Errorf("%s: got %v, want %v", what, got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("%s: %s missing (got %v)", what, k, got)
		}
		if diff := g.MilliCPU - w.MilliCPU; diff*100 > w.MilliCPU || -diff*100 > w.MilliCPU {
			return fmt.Errorf("%s: %s CPU %dm, want %dm within 1%%", what, k, g.MilliCPU, w.MilliCPU)
		}
		if g.Memory != w.Memory {
			return fmt.Errorf("%s: %s memory %d, want %d", what, k, g.Memory, w.Memory)
		}
	}
	return nil
}

func comparePods(what string, want, got map[string]map[string]usage) error {
	if len(want) != len(got) {
		return fmt.Errorf("%s: got %d pods %v, want %d", what, len(got), got, len(want))
	}
	for pod, w := range want {
		if err := compareUsage(what+" "+pod, w, got[pod]); err != nil {
			return err
		}
	}
	return nil
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // test server with a self-signed certificate

func mustGet(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
