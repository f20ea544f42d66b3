//go:build realnode

package realnode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// skipOrFail skips with reason, or fails when REALNODE_REQUIRED=1 (what
// `make real-node` sets: there a missing piece is an error, not a skip).
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("REALNODE_REQUIRED") == "1" {
		t.Fatalf("real node test cannot run: %s", reason)
	}
	t.Skipf("real node test skipped: %s", reason)
}

// TestRealKubeletMetrics starts a control plane, containerd and a real
// kubelet v1.37.2, runs a pod holding holdMiB MiB and burning cpuMillis
// millicores, and scrapes the kubelet's /metrics/resource and
// /stats/summary?only_cpu_and_memory=true with our kubelet client, the
// serving certificate verified against the kubelet CA.
func TestRealKubeletMetrics(t *testing.T) {
	if why := Missing(); why != "" {
		skipOrFail(t, why)
	}
	binDir, err := filepath.Abs("../.cache/bin/v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	kubeletBin := filepath.Join(binDir, "kubelet")
	if _, err := os.Stat(kubeletBin); err != nil {
		skipOrFail(t, "no kubelet binary at "+kubeletBin+" (test/tools/build-k8s.sh kubelet)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("/tmp", "kubemetrics-realnode-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("working in %s", dir)
	workload := filepath.Join(dir, "workload")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "realnode", "-trimpath", "-o", workload, "./cmd/workload")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the workload: %v: %s", err, out)
	}

	cluster, err := localcluster.Start(ctx, localcluster.Options{BinDir: binDir, Dir: filepath.Join(dir, "cluster"), Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	defer cluster.Stop()
	node, err := Start(ctx, Options{Dir: filepath.Join(dir, "node"), Kubelet: kubeletBin, Cluster: cluster, WorkloadBinary: workload, Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting the node: %v (logs in %s)", err, filepath.Join(dir, "node", "logs"))
	}
	cleanDir := false
	defer func() {
		node.Stop()
		if cleanDir {
			if err := os.RemoveAll(dir); err != nil {
				t.Logf("removing %s: %v", dir, err)
			}
		} else {
			t.Logf("kept %s for its logs", dir)
		}
	}()
	t.Logf("node %s is Ready", NodeName)

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
	if _, err := cluster.KubectlAs(ctx, cluster.AdminKubeconfig, []byte(pod), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if err := localcluster.Poll(ctx, "pod burner Running", time.Second, 2*time.Minute, func() error {
		out, err := cluster.Kubectl(ctx, "get", "pod", "burner", "-n", "default", "-o", "jsonpath={.status.phase}")
		if err != nil {
			return err
		}
		if out != "Running" {
			return fmt.Errorf("phase %q", out)
		}
		return nil
	}); err != nil {
		desc, _ := cluster.Kubectl(ctx, "describe", "pod", "burner", "-n", "default")
		t.Fatalf("%v\n%s", err, desc)
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
	kubeletRest, scheme := kubelet.RestConfigFor(base, kubelet.TLSOptions{CAFile: node.KubeletCA})

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
	wrongCA := kubelet.TLSOptions{CAFile: cluster.PKI.Path(pki.ClusterCA + ".crt")}
	wrongCARest, _ := kubelet.RestConfigFor(base, wrongCA)
	for _, tc := range []struct {
		name   string
		rest   *restclient.Config
		reason kubelet.Reason
		status int
	}{
		{"cluster CA instead of kubelet CA", wrongCARest, kubelet.ReasonTLS, 0},
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

	t.Run("kubectl-top", func(t *testing.T) {
		binary := filepath.Join(dir, "metrics-server")
		b := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/metrics-server")
		b.Dir = "../.." // the repository root
		b.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := b.CombinedOutput(); err != nil {
			t.Fatalf("building metrics-server: %v: %s", err, out)
		}
		repo, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		port, err := cluster.StartMetricsServer(ctx, localcluster.MetricsServer{
			Binary:    binary,
			Manifests: filepath.Join(repo, "manifests/overlays/local"),
			Args:      []string{"--metric-resolution=15s", "-v=2"},
		})
		if err != nil {
			t.Fatalf("starting metrics-server: %v", err)
		}
		t.Logf("metrics-server on port %d, APIServices Available", port)
		var line string
		if err := localcluster.Poll(ctx, "kubectl top pod burner", time.Second, 2*time.Minute, func() error {
			out, err := cluster.Kubectl(ctx, "top", "pod", "burner", "-n", "default", "--no-headers")
			if err != nil {
				return err
			}
			line = strings.TrimSpace(out)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl top pod burner: %s", line)
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "burner" {
			t.Fatalf("kubectl top pod printed %q, want NAME CPU MEMORY", line)
		}
		milli, err1 := strconv.Atoi(strings.TrimSuffix(f[1], "m"))
		mi, err2 := strconv.Atoi(strings.TrimSuffix(f[2], "Mi"))
		if err1 != nil || err2 != nil || !strings.HasSuffix(f[1], "m") || !strings.HasSuffix(f[2], "Mi") {
			t.Fatalf("kubectl top pod printed %q: cannot read CPU (m) and memory (Mi)", line)
		}
		if milli < cpuMillis/2 || milli > cpuMillis*3/2 {
			t.Errorf("kubectl top pod CPU %dm, want about %dm (within 50%%)", milli, cpuMillis)
		}
		if mi < holdMiB || mi > holdMiB*11/10 {
			t.Errorf("kubectl top pod memory %dMi, want within 10%% above %dMi", mi, holdMiB)
		}
		// The node can come later than the pod: the kubelet's node-level
		// sample (the root cgroup) may not have moved between the
		// start-up scrapes, which are 2s apart.
		began := time.Now()
		var nodeTop string
		if err := localcluster.Poll(ctx, "kubectl top node "+NodeName, time.Second, time.Minute, func() error {
			nodeTop, err = cluster.Kubectl(ctx, "top", "node", NodeName, "--no-headers")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl top node (after %s): %s", time.Since(began).Round(time.Second), strings.TrimSpace(nodeTop))
		if f := strings.Fields(nodeTop); len(f) < 3 || f[0] != NodeName {
			t.Errorf("kubectl top node printed %q, want the node's CPU and memory", nodeTop)
		}
	})
	cleanDir = !t.Failed()
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
