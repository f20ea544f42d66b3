//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeploymentVariants installs the other shapes of the Deployment on
// the real scheduler and kubelet: the host-network overlay and the chart's
// hostNetwork (the pod on the node's address, serving on 4443 there and
// nowhere else, a rollout that needs no second node), and the
// high-availability component on this one node (one replica serves, the
// other waits for a node of its own, as the required anti-affinity says).
// The base is TestComponentsYAML's.
func TestDeploymentVariants(t *testing.T) {
	need(t)
	for _, tc := range []struct {
		name     string
		render   func(ctx context.Context, t *testing.T) []byte
		replicas int
		hostNet  bool
	}{
		{"kustomize host-network overlay", kustomizeOf("manifests/overlays/host-network"), 1, true},
		{"chart hostNetwork", chartRender("--set", "hostNetwork.enabled=true"), 1, true},
		{"kustomize base with high-availability", kustomizeOf("manifests/base", "manifests/components/high-availability"), 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			rendered := tc.render(ctx, t)
			if _, err := kubectlIn(ctx, string(rendered), "apply", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			deleted := false
			defer func() {
				if !deleted {
					_, _ = kubectlIn(context.Background(), string(rendered), "delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=2m")
				}
			}()
			if tc.replicas == 1 {
				checkInstalled(ctx, t, "k8s-app=metrics-server")
			} else {
				checkOneNodeHA(ctx, t, tc.replicas)
			}
			if tc.hostNet {
				checkHostNetwork(ctx, t)
				began := time.Now()
				if _, err := kubectl(ctx, "rollout", "restart", "deployment/metrics-server", "-n", "kube-system"); err != nil {
					t.Fatal(err)
				}
				checkInstalled(ctx, t, "k8s-app=metrics-server")
				t.Logf("rollout restart on the one node finished in %s (maxSurge 0: the old pod gives its port first)", time.Since(began).Round(time.Second))
			}
			if _, err := kubectlTop(ctx, "node", "", NodeName, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := kubectlIn(ctx, string(rendered), "delete", "-f", "-", "--wait=true", "--timeout=2m"); err != nil {
				t.Fatal(err)
			}
			deleted = true
			checkNothingLeft(ctx, t, rendered, "k8s-app=metrics-server")
		})
	}
}

// checkHostNetwork: the pod has the node's address, serves there on 4443
// with a certificate the APIServices' caBundle verifies, and not on
// loopback (it binds the node's address only).
func checkHostNetwork(ctx context.Context, t *testing.T) {
	t.Helper()
	ip, err := kubectl(ctx, "get", "pods", "-n", "kube-system", "-l", "k8s-app=metrics-server", "-o", "jsonpath={.items[*].status.podIP}")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(ip) != NodeIP {
		t.Fatalf("pod IPs %q, want the node's %s (hostNetwork)", ip, NodeIP)
	}
	ca, err := apiServiceCABundle(ctx, "v1.metrics.k8s.io")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyServing(net.JoinHostPort(NodeIP, "4443"), "metrics-server.kube-system.svc", ca); err != nil {
		t.Errorf("serving on %s:4443: %v", NodeIP, err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:4443", 2*time.Second); err == nil {
		c.Close()
		t.Errorf("127.0.0.1:4443 accepts connections: the server listens on every address, not the node's")
	}
	t.Logf("serving on %s:4443 (hostNetwork), not on 127.0.0.1:4443", NodeIP)
}

// checkOneNodeHA: with two replicas under a required anti-affinity and one
// node, one replica is Ready and serves (both APIServices Available), the
// other is Pending and the scheduler says why.
func checkOneNodeHA(ctx context.Context, t *testing.T, replicas int) {
	t.Helper()
	if err := suite.node.Cluster.WaitAPIServicesAvailable(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	var phases string
	err := poll(ctx, "one replica Running and one Pending for want of a node", 2*time.Second, 2*time.Minute, func() error {
		out, err := kubectl(ctx, "get", "pods", "-n", "kube-system", "-l", "k8s-app=metrics-server", "-o",
			`jsonpath={range .items[*]}{.status.phase}{" "}{end}`)
		if err != nil {
			return err
		}
		phases = strings.TrimSpace(out)
		f := strings.Fields(phases)
		running, pending := 0, 0
		for _, p := range f {
			switch p {
			case "Running":
				running++
			case "Pending":
				pending++
			}
		}
		if len(f) != replicas || running != 1 || pending != replicas-1 {
			return fmt.Errorf("phases %q", phases)
		}
		ev, err := kubectl(ctx, "get", "events", "-n", "kube-system", "--field-selector", "reason=FailedScheduling", "-o", "jsonpath={.items[*].message}")
		if err != nil {
			return err
		}
		if !strings.Contains(ev, "anti-affinity") {
			return fmt.Errorf("no FailedScheduling event naming the anti-affinity: %q", ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pdb, err := kubectl(ctx, "get", "pdb", "metrics-server", "-n", "kube-system", "-o", "jsonpath={.status.disruptionsAllowed}")
	if err != nil {
		t.Fatal(err)
	}
	if pdb != "0" {
		t.Errorf("PodDisruptionBudget allows %s disruptions with one replica serving, want 0", pdb)
	}
	t.Logf("pods %q: one serves, the other waits for a node of its own; the PodDisruptionBudget allows 0 disruptions", phases)
}

// kustomizeOf renders resource of the repository with its components.
func kustomizeOf(resource string, components ...string) func(ctx context.Context, t *testing.T) []byte {
	return func(ctx context.Context, t *testing.T) []byte {
		t.Helper()
		out, err := suite.node.Cluster.RenderKustomizeOf(ctx, suite.repo, resource, components...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// chartRender renders the chart as release metrics-server in kube-system.
func chartRender(flags ...string) func(ctx context.Context, t *testing.T) []byte {
	return func(ctx context.Context, t *testing.T) []byte {
		t.Helper()
		out, err := helmCmd(ctx, append([]string{"template", "metrics-server", filepath.Join(suite.repo, "charts/metrics-server"), "--namespace", "kube-system"}, flags...)...)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(out)
	}
}
