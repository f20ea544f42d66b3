//go:build realnode

// Command demo is `make demo-real`: the playground on a real node. It
// starts the control plane on the bridge kmrn45, containerd, a real
// kubelet v1.37.2 and kube-proxy, installs our image with
// `kubectl apply -f manifests/components.yaml` as a user does, runs a
// Deployment that burns CPU under an HPA and a pod that holds memory,
// prints kubectl top and the commands to try, and stays up until Ctrl-C,
// when it removes everything it made.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kubemetrics/metrics-server/test/localcluster"
	"github.com/kubemetrics/metrics-server/test/realnode"
)

func main() {
	repo := flag.String("repo", "..", "the repository's root")
	flag.Parse()
	if err := run(*repo); err != nil {
		fmt.Fprintln(os.Stderr, "demo-real:", err)
		os.Exit(1)
	}
}

const workloads = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %[1]s
        imagePullPolicy: Never
        args: ["-cpu-millis=150", "-hold-mib=40"]
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 300m, memory: 128Mi}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
---
apiVersion: v1
kind: Pod
metadata: {name: cache, namespace: default}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: cache
    image: %[1]s
    imagePullPolicy: Never
    args: ["-hold-mib=256"]
    resources:
      requests: {cpu: 10m, memory: 300Mi}
      limits: {memory: 300Mi}
`

func run(repoArg string) error {
	if why := realnode.Missing(); why != "" {
		return fmt.Errorf("this machine cannot run a real node: %s. `make demo` runs the playground with simulated kubelets and no root", why)
	}
	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	bin := filepath.Join(repo, "test/.cache/bin/v1.37.2")
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logf := func(format string, a ...any) {
		fmt.Printf("demo-real %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	dir := realnode.DirPrefix + "demo"
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	built, err := realnode.Build(ctx, repo, dir)
	if err != nil {
		return err
	}
	logf("built our image %s (make image)", built.Image)
	node, err := realnode.Up(ctx, realnode.Options{Dir: filepath.Join(dir, "node"), BinDir: bin, WorkloadBinary: built.Workload,
		ImageTars: []string{built.ImageTar}, Logf: logf})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping: the server, the pods, the kubelet, kube-proxy, containerd, the control plane, the bridge")
		node.Stop()
		if err := os.RemoveAll(dir); err != nil {
			logf("removing %s: %v", dir, err)
		}
		logf("stopped; nothing left")
	}()
	c := node.Cluster
	if _, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(repo, "manifests/components.yaml")); err != nil {
		return err
	}
	if _, err := c.KubectlAs(ctx, c.AdminKubeconfig, []byte(fmt.Sprintf(workloads, realnode.WorkloadImage)), "apply", "-f", "-"); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "rollout", "status", "deployment/metrics-server", "-n", "kube-system", "--timeout=3m"); err != nil {
		return err
	}
	if err := c.WaitAPIServicesAvailable(ctx, 3*time.Minute); err != nil {
		return err
	}
	logf("our server runs as a pod from manifests/components.yaml; both APIServices Available")
	var top string
	if err := localcluster.Poll(ctx, "kubectl top pod", 2*time.Second, 2*time.Minute, func() error {
		out, err := c.Kubectl(ctx, "top", "pod", "-A")
		top = out
		if err == nil && !strings.Contains(out, "cache") {
			return fmt.Errorf("no cache pod yet")
		}
		return err
	}); err != nil {
		return err
	}
	nodeTop, _ := c.Kubectl(ctx, "top", "node")
	fmt.Printf("\n$ kubectl top node\n%s\n$ kubectl top pod -A\n%s\n", nodeTop, top)
	kubectl, _ := exec.LookPath(filepath.Join(bin, "kubectl"))
	fmt.Printf(`The real node is up. In another shell (as root):

  export KUBECONFIG=%s
  export PATH=%s:%s:$PATH
  kubectl top node; kubectl top pod -A; kubectl get hpa web -w
  kubectl -n kube-system logs deploy/metrics-server
  %s doctor

Ctrl-C here removes everything (or, after a kill, make real-node-down).
`, c.AdminKubeconfig, filepath.Dir(kubectl), filepath.Join(repo, "test/.cache/bin/helm-v3.22.0"), built.Server)
	<-ctx.Done()
	return nil
}
