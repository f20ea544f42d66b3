//go:build realnode

package realnode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/test/localcluster"
	"github.com/kubemetrics/metrics-server/test/ociimage"
)

// upstreamVersion is the kubernetes-sigs/metrics-server release we compare
// with: its binary from the module proxy, its manifests from the module.
const upstreamVersion = localcluster.UpstreamVersion

// The pods whose containers come and go: what each server lists of them
// must be the same.
const edgePods = `apiVersion: v1
kind: Namespace
metadata: {name: edge}
---
apiVersion: v1
kind: Pod
metadata: {name: init-done, namespace: edge}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: init, image: %[2]s, imagePullPolicy: Never, args: ["-exit-after=1s"]}
  containers:
  - {name: app, image: %[2]s, imagePullPolicy: Never, args: ["-hold-mib=20", "-cpu-millis=20"]}
---
apiVersion: v1
kind: Pod
metadata: {name: native-sidecar, namespace: edge}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: proxy, image: %[2]s, imagePullPolicy: Never, restartPolicy: Always, args: ["-hold-mib=10", "-cpu-millis=10"]}
  containers:
  - {name: app, image: %[2]s, imagePullPolicy: Never, args: ["-hold-mib=20", "-cpu-millis=20"]}
---
apiVersion: v1
kind: Pod
metadata: {name: restarted, namespace: edge}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: app
    image: %[2]s
    imagePullPolicy: Never
    args: ["-hold-mib=20", "-cpu-millis=20", "-exit-once=/state/ran", "-exit-after=3s", "-exit-code=1"]
    volumeMounts: [{name: state, mountPath: /state}]
---
apiVersion: v1
kind: Pod
metadata: {name: job-done, namespace: edge}
spec:
  nodeName: %[1]s
  restartPolicy: Never
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - {name: task, image: %[2]s, imagePullPolicy: Never, args: ["-exit-after=1s"]}
`

// TestServedAsUpstream runs upstream metrics-server v0.9.0 (its binary
// from the module proxy packed as its release image, installed with its
// own release manifests) and then ours on the same node, and compares the
// pods and containers each serves of pods that start and stop: a finished
// init container, a native sidecar, a container restarted once, a
// completed pod.
func TestServedAsUpstream(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	upstream, image := upstreamRelease(ctx, t)
	if _, err := kubectlIn(ctx, fmt.Sprintf(edgePods, NodeName, WorkloadImage), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = kubectl(context.Background(), "delete", "namespace", "edge", "--wait=false") }()
	if err := poll(ctx, "the edge pods settled", 2*time.Second, 3*time.Minute, func() error {
		out, err := kubectl(ctx, "get", "pods", "-n", "edge", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.phase}/{.status.containerStatuses[*].restartCount}/{.status.containerStatuses[*].ready}{" "}{end}`)
		if err != nil {
			return err
		}
		want := []string{"init-done=Running/0/true", "job-done=Succeeded/0/false", "native-sidecar=Running/0/true", "restarted=Running/1/true"}
		if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(want, " ") {
			return fmt.Errorf("pods %q, want %q", got, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	served := func(name string) map[string][]string {
		t.Helper()
		// Two resolutions after Available: every running container has
		// had its two samples.
		time.Sleep(35 * time.Second)
		var out map[string][]string
		if err := poll(ctx, name+" serving the edge pods", 2*time.Second, time.Minute, func() error {
			ms, err := getMetrics(ctx, "/apis/metrics.k8s.io/v1beta1/namespaces/edge/pods")
			if err != nil {
				return err
			}
			out = map[string][]string{}
			for _, p := range ms {
				var cs []string
				for _, c := range p.Containers {
					cs = append(cs, c.Name)
				}
				sort.Strings(cs)
				out[p.Metadata.Name] = cs
			}
			if len(out) == 0 {
				return fmt.Errorf("no edge pod served")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s serves %v", name, out)
		return out
	}

	// Upstream first.
	if _, err := kubectlIn(ctx, string(upstream), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectl(ctx, "rollout", "status", "deployment/metrics-server", "-n", "kube-system", "--timeout=3m"); err != nil {
		desc, _ := kubectl(ctx, "describe", "pods", "-n", "kube-system", "-l", "k8s-app=metrics-server")
		t.Fatalf("upstream %s (%s): %v\n%s", upstreamVersion, image, err, desc)
	}
	if err := poll(ctx, "upstream's APIService Available", 2*time.Second, 3*time.Minute, func() error {
		status, msg, err := suite.node.Cluster.APIServiceAvailable(ctx, "v1beta1.metrics.k8s.io")
		if err != nil {
			return err
		}
		if status != "True" {
			return fmt.Errorf("Available=%s: %s", status, msg)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	theirs := served("upstream " + upstreamVersion)
	if _, err := kubectlIn(ctx, string(upstream), "delete", "-f", "-", "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(ctx, t, upstream, "k8s-app=metrics-server")

	// Then ours, from the release manifest.
	installComponents(ctx, t)
	ours := served("ours")

	a, _ := json.Marshal(theirs)
	b, _ := json.Marshal(ours)
	if string(a) != string(b) {
		t.Errorf("the edge pods served differ:\nupstream %s\nours     %s", a, b)
	}
	if _, ok := ours["job-done"]; ok {
		t.Errorf("a completed pod is served: %v", ours["job-done"])
	}
}

// upstreamRelease builds upstream's binary (CGO off, from the module proxy),
// imports it as the image its release manifests name, and returns those
// manifests rendered (kustomize, overlays/release of the module).
func upstreamRelease(ctx context.Context, t *testing.T) ([]byte, string) {
	t.Helper()
	dir := filepath.Join(suite.dir, "upstream")
	bin, err := localcluster.InstallUpstream(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	modDir, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", localcluster.UpstreamModule+"@"+upstreamVersion).Output()
	if err != nil {
		t.Fatalf("go mod download upstream: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(modDir, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download upstream: %v (%s)", err, modDir)
	}
	rendered, err := suite.node.Cluster.RenderKustomize(ctx, filepath.Join(mod.Dir, "manifests/overlays/release"))
	if err != nil {
		t.Fatal(err)
	}
	image, err := ComponentsImage(writeTemp(t, rendered))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(ociimage.Options{Binary: bin, Version: upstreamVersion, Revision: "module-proxy", Created: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(dir, "image.tar")
	if err := ociimage.WriteFile(tar, image, img); err != nil {
		t.Fatal(err)
	}
	if err := suite.node.ImportImage(ctx, tar); err != nil {
		t.Fatal(err)
	}
	t.Logf("upstream %s built from the module proxy and imported as %s", upstreamVersion, image)
	return rendered, image
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
