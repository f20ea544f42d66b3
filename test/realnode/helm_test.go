//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestHelmRelease installs the chart as a real Helm release with its
// defaults (our image, the TLS bootstrap), checks it as TestComponentsYAML
// does, upgrades the release to the summary endpoint
// (--kubelet-endpoint=summary) and checks the same pods and containers are
// served at about the same usage, then uninstalls it: nothing of the
// release is left, not even its history.
func TestHelmRelease(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	chart := filepath.Join(suite.repo, "charts/metrics-server")
	const selector = "app.kubernetes.io/instance=metrics-server"

	workloads := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: steady, namespace: default}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: %[2]s
    imagePullPolicy: Never
    args: ["-exit-after=1s"]
  containers:
  - name: burner
    image: %[2]s
    imagePullPolicy: Never
    args: ["-cpu-millis=200", "-hold-mib=64"]
    resources:
      requests: {cpu: 100m, memory: 96Mi}
      limits: {cpu: 500m, memory: 128Mi}
  - name: sidecar
    image: %[2]s
    imagePullPolicy: Never
    args: ["-hold-mib=16"]
`, NodeName, WorkloadImage)
	if _, err := kubectlIn(ctx, workloads, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = kubectl(context.Background(), "delete", "pod", "steady", "-n", "default", "--wait=false")
	}()
	if err := waitPodsRunning(ctx, "default", "steady"); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	if out, err := helmCmd(ctx, "install", "metrics-server", chart, "-n", "kube-system", "--wait", "--timeout", "4m"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("helm install: %s", firstLines(out, 6))
	}
	installed := true
	defer func() {
		if installed {
			_, _ = helmCmd(context.Background(), "uninstall", "metrics-server", "-n", "kube-system")
		}
	}()
	checkInstalled(ctx, t, selector)
	t.Logf("helm release installed, Available in %s", time.Since(began).Round(time.Second))

	before, err := servedContainers(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("served with /metrics/resource: %v", before)

	began = time.Now()
	if _, err := helmCmd(ctx, "upgrade", "metrics-server", chart, "-n", "kube-system", "--reuse-values",
		"--set", "args={--kubelet-endpoint=summary}", "--wait", "--timeout", "4m"); err != nil {
		t.Fatal(err)
	}
	args, err := kubectl(ctx, "get", "deployment", "metrics-server", "-n", "kube-system", "-o", "jsonpath={.spec.template.spec.containers[0].args}")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(args, "--kubelet-endpoint=summary") {
		t.Fatalf("after helm upgrade the Deployment's args are %s", args)
	}
	checkInstalled(ctx, t, selector)
	t.Logf("helm upgrade to --kubelet-endpoint=summary rolled out in %s", time.Since(began).Round(time.Second))
	var after map[string]containerUsage
	if err := poll(ctx, "the same containers served from /stats/summary", 2*time.Second, 90*time.Second, func() error {
		if after, err = servedContainers(ctx, "default"); err != nil {
			return err
		}
		if got, want := keys(after), keys(before); got != want {
			return fmt.Errorf("served %s, before the upgrade %s", got, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("served with /stats/summary: %v", after)
	for k, b := range before {
		a := after[k]
		if k == "steady/burner" && !within(float64(a.milli), float64(b.milli), 0.15) {
			t.Errorf("%s: CPU %dm from the summary, %dm from /metrics/resource", k, a.milli, b.milli)
		}
		if !within(float64(a.mib), float64(b.mib), 0.10) {
			t.Errorf("%s: memory %dMi from the summary, %dMi from /metrics/resource", k, a.mib, b.mib)
		}
	}

	manifest, err := helmCmd(ctx, "get", "manifest", "metrics-server", "-n", "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := helmCmd(ctx, "uninstall", "metrics-server", "-n", "kube-system", "--wait", "--timeout", "2m"); err != nil {
		t.Fatal(err)
	}
	installed = false
	checkNothingLeft(ctx, t, []byte(manifest), selector)
	out, err := kubectl(ctx, "get", "secrets", "-n", "kube-system", "-l", "owner=helm,name=metrics-server", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("helm uninstall left the release's history: %s", out)
	}
}

// containerUsage is one served container's usage, rounded as kubectl top
// rounds.
type containerUsage struct{ milli, mib int64 }

func (c containerUsage) String() string { return fmt.Sprintf("%dm/%dMi", c.milli, c.mib) }

// servedContainers lists ns's containers in PodMetrics as "pod/container".
func servedContainers(ctx context.Context, ns string) (map[string]containerUsage, error) {
	ms, err := getMetrics(ctx, "/apis/metrics.k8s.io/v1/namespaces/"+ns+"/pods")
	if err != nil {
		return nil, err
	}
	out := map[string]containerUsage{}
	for _, p := range ms {
		for _, c := range p.Containers {
			cpu, mem := c.Usage["cpu"], c.Usage["memory"]
			out[p.Metadata.Name+"/"+c.Name] = containerUsage{cpu.MilliValue(), mem.Value() >> 20}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no container served in %s", ns)
	}
	return out, nil
}

func keys(m map[string]containerUsage) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}
