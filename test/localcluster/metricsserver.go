package localcluster

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// MetricsServer says how to run our server in the cluster.
type MetricsServer struct {
	// Binary is the metrics-server executable.
	Binary string
	// Manifests is the kustomize folder applied for RBAC and the
	// APIServices (manifests/overlays/local).
	Manifests string
	// Args are extra flags, such as --metric-resolution.
	Args []string
	// Env are extra environment variables (KEY=VALUE), such as GOMAXPROCS.
	Env []string
	// Started, when set, is called with the server's port as soon as its
	// process runs, before the APIServices are patched and waited for.
	Started func(port int)
	// WaitFor names the APIServices to wait for; default both
	// v1.metrics.k8s.io and v1beta1.metrics.k8s.io. Upstream v0.9.0
	// serves v1beta1 only: waiting for v1 too passed only while v1 still
	// read Available from an earlier run of ours.
	WaitFor []string
}

// StartMetricsServer registers and runs our metrics server with a
// ServiceAccount token (not admin credentials), then waits until both
// APIServices are Available.
func (c *Cluster) StartMetricsServer(ctx context.Context, ms MetricsServer) (int, error) {
	// The manifests are applied once; a restart keeps the APIServices as
	// they were registered (port and caBundle set below).
	if !c.registered {
		rendered, err := c.Kubectl(ctx, "kustomize", ms.Manifests)
		if err != nil {
			return 0, err
		}
		if _, err := c.KubectlAs(ctx, c.AdminKubeconfig, []byte(rendered), "apply", "-f", "-"); err != nil {
			return 0, err
		}
		c.registered = true
	}
	token, err := c.Kubectl(ctx, "create", "token", "metrics-server", "-n", "kube-system", "--duration", "48h")
	if err != nil {
		return 0, err
	}
	kc := filepath.Join(c.opts.Dir, "metrics-server.kubeconfig")
	if err := WriteKubeconfig(kc, c.APIServer, c.PKI.Path(pki.ClusterCA+".crt"), "", "", strings.TrimSpace(token)); err != nil {
		return 0, err
	}
	port := c.metricsPort
	if port == 0 {
		if port, err = freePort(); err != nil {
			return 0, err
		}
		c.metricsPort = port
	}
	args := append([]string{
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
		"--tls-cert-file", c.PKI.Path(pki.MetricsServing + ".crt"), "--tls-private-key-file", c.PKI.Path(pki.MetricsServing + ".key"),
		"--kubelet-certificate-authority", c.PKI.Path(pki.KubeletCA + ".crt"),
		"--kubelet-use-node-status-port", "--kubelet-preferred-address-types", "InternalIP",
	}, ms.Args...)
	p, err := startWithEnv(c.opts.Dir, "metrics-server", ms.Binary, ms.Env, args...)
	if err != nil {
		return 0, err
	}
	c.procs["metrics-server"] = p
	if ms.Started != nil {
		ms.Started(port)
	}

	ca, err := os.ReadFile(c.PKI.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		return 0, err
	}
	patch := fmt.Sprintf(`{"spec":{"service":{"port":%d},"caBundle":%q,"insecureSkipTLSVerify":false}}`, port, base64.StdEncoding.EncodeToString(ca))
	for _, v := range []string{"v1", "v1beta1"} {
		if _, err := c.Kubectl(ctx, "patch", "apiservice", v+".metrics.k8s.io", "--type", "merge", "-p", patch); err != nil {
			return 0, err
		}
	}
	if err := c.WaitAPIServicesAvailable(ctx, 2*time.Minute, ms.WaitFor...); err != nil {
		return 0, err
	}
	return port, nil
}

// WaitAPIServicesAvailable waits for the named APIServices, by default
// v1.metrics.k8s.io and v1beta1.metrics.k8s.io.
func (c *Cluster) WaitAPIServicesAvailable(ctx context.Context, limit time.Duration, names ...string) error {
	if len(names) == 0 {
		names = []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}
	}
	for _, name := range names {
		err := poll(ctx, "APIService "+name, time.Second, limit, func() error {
			if p := c.procs["metrics-server"]; p != nil {
				if done, err := p.exited(); done {
					return permanent{fmt.Errorf("metrics-server exited (%v); see %s", err, filepath.Join(c.opts.Dir, "logs", "metrics-server.log"))}
				}
			}
			out, err := c.Kubectl(ctx, "get", "apiservice", name, "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status} {.status.conditions[?(@.type=="Available")].message}`)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(out, "True") {
				return fmt.Errorf("not available: %s", out)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// StopMetricsServer stops our server only.
func (c *Cluster) StopMetricsServer() {
	if p, ok := c.procs["metrics-server"]; ok {
		p.stop()
		delete(c.procs, "metrics-server")
	}
}

// MetricsServerPID is the pid of our running server, 0 when none runs.
func (c *Cluster) MetricsServerPID() int {
	if p, ok := c.procs["metrics-server"]; ok && p.cmd.Process != nil {
		return p.cmd.Process.Pid
	}
	return 0
}
