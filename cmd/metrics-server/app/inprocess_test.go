package app

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
)

const testToken = "kubelet-test-token"

// usage is what a test expects the API to serve for one object or container.
type usage struct {
	MilliCPU int64
	Memory   int64
}

// TestInProcess runs the real server (options, informers, scraper, kubelet
// client, store, API) against fake kubelets on loopback and fake API
// clients, and reads the metrics over HTTPS through the typed clientset, in
// both API versions and both encodings.
func TestInProcess(t *testing.T) {
	kubelets := map[string]*fakeKubelet{
		// Serves only /stats/summary.
		"node-summary": {nodeMilliCores: 1500, nodeMemoryBytes: 2 << 30, resourceStatus: http.StatusNotFound, pods: []fakePod{
			{"ns1", "web-1", []fakeContainer{{"app", 250, 100 << 20}, {"sidecar", 10, 20 << 20}}},
		}},
		// Serves only /metrics/resource.
		"node-resource": {nodeMilliCores: 700, nodeMemoryBytes: 3 << 30, summaryStatus: http.StatusNotFound, pods: []fakePod{
			{"ns1", "web-2", []fakeContainer{{"app", 500, 200 << 20}}},
		}},
		// Its /metrics/resource fails with a server error.
		"node-broken-resource": {nodeMilliCores: 3000, nodeMemoryBytes: 5 << 30, resourceStatus: http.StatusInternalServerError, pods: []fakePod{
			{"ns2", "db-0", []fakeContainer{{"db", 1000, 1 << 30}}},
		}},
	}
	kube := fake.NewClientset()
	var podObjs []runtime.Object
	for name, k := range kubelets {
		k.wantToken = testToken
		srv := k.serve()
		t.Cleanup(srv.Close)
		port := mustPort(t, srv.URL)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
			Status: corev1.NodeStatus{
				Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name + ".invalid"}},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
			},
		}
		if _, err := kube.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range k.pods {
			podObjs = append(podObjs, podMeta(p.namespace, p.name, map[string]string{"app": p.name[:len(p.name)-2]}))
		}
	}
	// A running pod the kubelets do not report: it must be NotFound.
	podObjs = append(podObjs, podMeta("ns1", "pending-metrics", nil))
	meta := fakeMetadata(t, podObjs...)

	opts := options.NewOptions()
	opts.SecureServing.ServerCert.CertDirectory = t.TempDir()
	opts.DisableAuthForTesting = true
	addr, _ := runServer(t, opts, testToken, kube, meta)
	ctx := t.Context()

	wantNodes := map[string]usage{
		"node-summary":         {1500, 2 << 30},
		"node-resource":        {700, 3 << 30},
		"node-broken-resource": {3000, 5 << 30},
	}
	wantPods := map[string]map[string]usage{
		"ns1/web-1": {"app": {250, 100 << 20}, "sidecar": {10, 20 << 20}},
		"ns1/web-2": {"app": {500, 200 << 20}},
		"ns2/db-0":  {"db": {1000, 1 << 30}},
	}

	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		client, err := metricsclient.NewForConfig(&rest.Config{
			Host:            "https://" + addr,
			TLSClientConfig: rest.TLSClientConfig{Insecure: true},
			ContentConfig:   rest.ContentConfig{ContentType: ct, AcceptContentTypes: ct},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Run("v1/"+ct, func(t *testing.T) {
			waitFor(t, 30*time.Second, func() error {
				return checkV1(ctx, client, wantNodes, wantPods)
			})
		})
		t.Run("v1beta1/"+ct, func(t *testing.T) {
			waitFor(t, 30*time.Second, func() error {
				return checkV1beta1(ctx, client, wantNodes, wantPods)
			})
		})
	}

	t.Run("NotFound for a pod without metrics and an unknown node", func(t *testing.T) {
		client := mustClient(t, addr)
		_, err := client.MetricsV1().PodMetricses("ns1").Get(ctx, "pending-metrics", metav1.GetOptions{})
		if !isNotFound(err) {
			t.Errorf("get pod without metrics: err = %v, want NotFound", err)
		}
		_, err = client.MetricsV1beta1().NodeMetricses().Get(ctx, "no-such-node", metav1.GetOptions{})
		if !isNotFound(err) {
			t.Errorf("get unknown node: err = %v, want NotFound", err)
		}
	})

	t.Run("fallback from a failing /metrics/resource is remembered", func(t *testing.T) {
		broken := kubelets["node-broken-resource"]
		if got := broken.Hits("/metrics/resource"); got != 1 {
			t.Errorf("/metrics/resource hit %d times on the node where it fails, want 1 (then remembered)", got)
		}
		if got := broken.Hits("/stats/summary"); got < 2 {
			t.Errorf("/stats/summary hit %d times, want at least 2 (a rate needs two points)", got)
		}
		if got := kubelets["node-resource"].Hits("/stats/summary"); got != 0 {
			t.Errorf("healthy resource node: /stats/summary hit %d times, want 0", got)
		}
	})

	t.Run("health and self-metrics", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 10 * time.Second}
		for _, path := range []string{"/readyz?verbose", "/livez?verbose", "/healthz"} {
			body := mustGet(t, hc, "https://"+addr+path)
			for _, check := range checksFor(path) {
				if !contains(body, "[+]"+check+" ok") {
					t.Errorf("%s does not pass check %s:\n%s", path, check, body)
				}
			}
		}
		body := mustGet(t, hc, "https://"+addr+"/metrics")
		for _, series := range []string{
			"metrics_server_kubelet_request_duration_seconds_bucket{node=\"node-summary\"",
			"metrics_server_kubelet_request_total{success=\"true\"}",
			"metrics_server_kubelet_last_request_time_seconds{node=",
			"metrics_server_manager_tick_duration_seconds_count",
			"metrics_server_storage_points{type=\"container\"} 8",
			"metrics_server_storage_points{type=\"node\"} 6",
			"metrics_server_storage_disputed_pods 0",
			"metrics_server_api_metric_freshness_seconds_count",
		} {
			if !contains(body, series) {
				t.Errorf("/metrics lacks %s", series)
			}
		}
	})
}

func checksFor(path string) []string {
	switch path {
	case "/readyz?verbose":
		return []string{"metric-storage-ready", "metric-informer-sync", "metadata-informer-sync"}
	case "/livez?verbose":
		return []string{"metric-collection-timely", "metadata-informer-sync"}
	}
	return nil
}

func podMeta(ns, name string, labels map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
	}
}

func mustPort(t *testing.T, rawURL string) int32 {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return int32(p)
}

func mustClient(t *testing.T, addr string) *metricsclient.Clientset {
	t.Helper()
	c, err := metricsclient.NewForConfig(&rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls check every 200ms until it passes or the time is up.
func waitFor(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("not true after %v: %v", limit, err)
}
