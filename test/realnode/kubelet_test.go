//go:build realnode

package realnode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The workload holds this much memory and burns this much CPU.
const (
	holdMiB   = 200
	cpuMillis = 200
)

// TestRealKubeletMetrics starts a control plane, containerd and a real
// kubelet v1.37.2, runs a pod holding holdMiB MiB and burning cpuMillis
// millicores, and scrapes the kubelet's /metrics/resource and
// /stats/summary?only_cpu_and_memory=true with our kubelet client, the
// serving certificate verified against the kubelet CA.
func TestRealKubeletMetrics(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster := suite.node.Cluster
	// The CA the kubelet's serving certificate verifies with: the cluster
	// CA, which signed its bootstrapped certificate.
	kubeletCA := cluster.PKI.Path(pki.ClusterCA + ".crt")

	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: burner, namespace: default}
spec:
  nodeName: %s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: burner
    image: %s
    imagePullPolicy: Never
    args: ["-hold-mib=%d", "-cpu-millis=%d"]
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: "1", memory: 512Mi}
`, NodeName, WorkloadImage, holdMiB, cpuMillis)
	if _, err := kubectlIn(ctx, pod, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = kubectl(context.Background(), "delete", "pod", "burner", "-n", "default", "--wait=false")
	}()
	if err := waitPodsRunning(ctx, "default", "burner"); err != nil {
		t.Fatal(err)
	}

	base, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cluster.Client()
	if err != nil {
		t.Fatal(err)
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node addresses %v, kubelet port %d", n.Status.Addresses, n.Status.DaemonEndpoints.KubeletEndpoint.Port)
	kubeletRest, scheme := kubelet.RestConfigFor(base, kubelet.TLSOptions{CAFile: kubeletCA})

	for _, tc := range []struct {
		name     string
		endpoint kubelet.Endpoint
	}{
		{"metrics-resource", kubelet.EndpointResource},
		{"stats-summary", kubelet.EndpointSummary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := kubelet.NewClient(kubelet.Config{Rest: kubeletRest, Scheme: scheme, Endpoint: tc.endpoint,
				AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, RequestTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			checkPod(ctx, t, client, n)
		})
	}

	// The kubelet's boundaries, as an attacker or a misconfigured scraper
	// meets them: the wrong CA, no credentials, credentials without rights.
	nobody, err := clientCertConfig(cluster, kubeletRest, "kubemetrics-realnode-nobody")
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := kubelet.TLSOptions{CAFile: cluster.PKI.Path(pki.KubeletCA + ".crt")}
	wrongCARest, _ := kubelet.RestConfigFor(base, wrongCA)
	for _, tc := range []struct {
		name   string
		rest   *restclient.Config
		reason kubelet.Reason
		status int
	}{
		{"another CA than the cluster CA", wrongCARest, kubelet.ReasonTLS, 0},
		{"anonymous", restclient.AnonymousClientConfig(kubeletRest), kubelet.ReasonHTTPStatus, http.StatusUnauthorized},
		{"client without nodes/metrics rights", nobody, kubelet.ReasonHTTPStatus, http.StatusForbidden},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			client, err := kubelet.NewClient(kubelet.Config{Rest: tc.rest, Scheme: scheme, Endpoint: kubelet.EndpointResource,
				AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, RequestTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.GetMetrics(ctx, n)
			var se *kubelet.ScrapeError
			if !errors.As(err, &se) {
				t.Fatalf("GetMetrics = %v, want a *ScrapeError with reason %s", err, tc.reason)
			}
			if se.Reason != tc.reason || (tc.status != 0 && se.Status != tc.status) {
				t.Fatalf("GetMetrics = %v (reason %s, status %d), want reason %s, status %d", err, se.Reason, se.Status, tc.reason, tc.status)
			}
			t.Logf("refused as expected: %v", err)
		})
	}

}

// clientCertConfig is base with a client certificate for user (no groups,
// no RBAC bindings) signed by the cluster CA instead of base's credentials.
func clientCertConfig(c *localcluster.Cluster, base *restclient.Config, user string) (*restclient.Config, error) {
	ca, err := pki.LoadCA(c.PKI.Path(pki.ClusterCA+".crt"), c.PKI.Path(pki.ClusterCA+".key"))
	if err != nil {
		return nil, err
	}
	kp, err := ca.Issue(pki.Request{CommonName: user, Client: true})
	if err != nil {
		return nil, err
	}
	key, err := pki.KeyPEM(kp.Key)
	if err != nil {
		return nil, err
	}
	cfg := restclient.AnonymousClientConfig(base)
	cfg.TLSClientConfig.CertData = pki.CertPEM(kp.Cert)
	cfg.TLSClientConfig.KeyData = key
	return cfg, nil
}

// checkPod scrapes until the burner's container has two samples at
// different times, then checks memory and the CPU rate between them.
func checkPod(ctx context.Context, t *testing.T, client *kubelet.Client, n *corev1.Node) {
	var first, last *points.Container
	err := localcluster.Poll(ctx, "two samples of container burner", time.Second, 90*time.Second, func() error {
		b, err := client.GetMetrics(ctx, n)
		if err != nil {
			return err
		}
		c := find(b, "default", "burner", "burner")
		if c == nil {
			return fmt.Errorf("no container default/burner/burner among %d pods", len(b.Pods))
		}
		if c.Has&points.HasCPU == 0 || c.Has&points.HasMemory == 0 {
			return fmt.Errorf("container burner has CPU=%v memory=%v", c.Has&points.HasCPU != 0, c.Has&points.HasMemory != 0)
		}
		if first == nil {
			first = c
			t.Logf("first sample: time %s cpu %dns memory %d bytes (%.1f MiB), start %s, node cpu %dns memory %d",
				time.Unix(0, c.Timestamp).UTC().Format(time.RFC3339Nano), c.CPU, c.Memory, float64(c.Memory)/(1<<20),
				time.Unix(0, c.StartTime).UTC().Format(time.RFC3339Nano), b.NodePoint.CPU, b.NodePoint.Memory)
			return fmt.Errorf("one sample so far")
		}
		if c.Timestamp <= first.Timestamp+int64(5*time.Second) {
			return fmt.Errorf("no newer sample yet (first at %d, now %d)", first.Timestamp, c.Timestamp)
		}
		last = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mib := float64(last.Memory) / (1 << 20)
	rate := float64(last.CPU-first.CPU) / float64(last.Timestamp-first.Timestamp)
	t.Logf("second sample: time %s cpu %dns memory %.1f MiB; CPU rate over %s: %.3f cores",
		time.Unix(0, last.Timestamp).UTC().Format(time.RFC3339Nano), last.CPU, mib,
		time.Duration(last.Timestamp-first.Timestamp), rate)
	if mib < holdMiB || mib > holdMiB*1.10 {
		t.Errorf("working set %.1f MiB, want within 10%% above the %d MiB the workload holds", mib, holdMiB)
	}
	want := float64(cpuMillis) / 1000
	if rate < want*0.5 || rate > want*1.5 {
		t.Errorf("CPU rate %.3f cores, want about %.3f (within 50%%)", rate, want)
	}
	if last.StartTime == 0 || last.StartTime > last.Timestamp {
		t.Errorf("start time %d, want set and before the sample (%d)", last.StartTime, last.Timestamp)
	}
}

// find returns a copy of the container, or nil.
func find(b *points.Batch, ns, pod, container string) *points.Container {
	for _, p := range b.Pods {
		if p.Namespace != ns || p.Name != pod {
			continue
		}
		for _, c := range p.Containers {
			if c.Name == container {
				cc := c
				cc.Name = strings.Clone(c.Name)
				return &cc
			}
		}
	}
	return nil
}
