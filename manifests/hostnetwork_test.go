package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// kubeletPort is the port every kubelet serves on its node's addresses; a
// server on the node's network must not take it.
const kubeletPort = 10250

// TestHostNetworkOverlay: the host-network overlay puts the server on the
// node's network, keeps service DNS names resolving, and serves on a port
// that is not the kubelet's on the node's address only (status.hostIP),
// consistently in the flag, the container port
// and the probes (which name the port), while the Service still reaches it
// by the port's name.
func TestHostNetworkOverlay(t *testing.T) {
	objs := render(t, "overlays/host-network")
	ds := deployments(t, objs)
	if len(ds) != 1 {
		t.Fatalf("%d Deployments, want 1", len(ds))
	}
	spec := ds[0].Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("hostNetwork is not set")
	}
	if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy %q, want %q: on the host network the default policy loses cluster DNS", spec.DNSPolicy, corev1.DNSClusterFirstWithHostNet)
	}
	c := spec.Containers[0]
	var ports []string
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "--secure-port="); ok {
			ports = append(ports, p)
		}
	}
	if !slices.Equal(ports, []string{"4443"}) {
		t.Errorf("--secure-port values %v, want exactly [4443]", ports)
	}
	var bind []string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--bind-address="); ok {
			bind = append(bind, v)
		}
	}
	hostIP := false
	for _, e := range c.Env {
		if e.Name == "HOST_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.hostIP" {
			hostIP = true
		}
	}
	if !slices.Equal(bind, []string{"$(HOST_IP)"}) || !hostIP {
		t.Errorf("--bind-address values %v, HOST_IP from status.hostIP %v: want the node's address only, not every address of the node", bind, hostIP)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 4443 || c.Ports[0].Name != "https" {
		t.Errorf("container ports %+v, want https on 4443", c.Ports)
	}
	for _, p := range c.Ports {
		if p.ContainerPort == kubeletPort || p.HostPort == kubeletPort {
			t.Errorf("container port %+v collides with the kubelet's %d", p, kubeletPort)
		}
	}
	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.String() != "https" {
			t.Errorf("%s probe %+v does not name the https port", name, probe)
		}
	}
	services := 0
	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		services++
		var s corev1.Service
		mustUnmarshal(t, o, &s)
		for _, p := range s.Spec.Ports {
			if p.TargetPort.String() != "https" {
				t.Errorf("Service %s port %d targets %q, want the name https", s.Name, p.Port, p.TargetPort.String())
			}
		}
	}
	if services == 0 {
		t.Error("the overlay renders no Service: nothing reaches the server")
	}
}

// TestRolloutNeedsNoSecondNode: every render of the manifests (each
// overlay, and the base with the high-availability and host-network
// components alone and together, in either order) whose pods each need a
// node of their own (a host port, as every port is on the host network, or
// a required anti-affinity by hostname against their own labels) rolls out
// without a surge pod: maxSurge resolves to 0 and maxUnavailable to at
// least 1. A surge pod needs one node more than there are replicas; on a
// cluster with as many eligible nodes as replicas it stays Pending and,
// with maxUnavailable 0, the rollout waits forever (test/e2erollout shows
// it on a real scheduler). Renders whose pods can share a node keep the
// base's surge.
func TestRolloutNeedsNoSecondNode(t *testing.T) {
	overlays, err := filepath.Glob("overlays/*")
	if err != nil {
		t.Fatal(err)
	}
	type variant struct {
		name string
		dir  string
		// ownNode says the render's pods must need a node of their own,
		// so the test cannot pass by not looking.
		ownNode bool
		// deploys says the render must hold a Deployment (the local
		// overlay runs the server as a process and holds none).
		deploys bool
	}
	var renders []variant
	for _, o := range overlays {
		renders = append(renders, variant{name: o, dir: o, ownNode: o == "overlays/host-network", deploys: o != "overlays/local"})
	}
	for _, tc := range []struct {
		components []string
		ownNode    bool
	}{
		{nil, false},
		{[]string{"components/high-availability"}, true},
		{[]string{"components/host-network"}, true},
		{[]string{"components/high-availability", "components/host-network"}, true},
		{[]string{"components/host-network", "components/high-availability"}, true},
	} {
		renders = append(renders, variant{name: "base+" + strings.Join(tc.components, "+"), dir: overlayOf(t, "base", tc.components...), ownNode: tc.ownNode, deploys: true})
	}
	for _, r := range renders {
		t.Run(r.name, func(t *testing.T) {
			ds := deployments(t, render(t, r.dir))
			if len(ds) == 0 && r.deploys {
				t.Fatal("no Deployment rendered")
			}
			for _, d := range ds {
				why := OwnNode(d)
				if r.ownNode && why == "" {
					t.Errorf("Deployment %s: its pods can share a node, want each on its own", d.Name)
				}
				if why == "" {
					continue
				}
				if err := RollsOutInPlace(d); err != nil {
					t.Errorf("Deployment %s (%s): %v", d.Name, why, err)
				}
			}
		})
	}
}

// overlayOf writes a kustomization of resource with components (folders
// of manifests/) in a temporary folder and returns the folder.
func overlayOf(t *testing.T, resource string, components ...string) string {
	t.Helper()
	dir := t.TempDir()
	// kustomize takes other kustomizations by relative path only.
	rel := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, a)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "resources:\n  - " + rel(resource) + "\n"
	if len(components) > 0 {
		k += "components:\n"
		for _, c := range components {
			k += "  - " + rel(c) + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
