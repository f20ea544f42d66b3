package manifests

import (
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
// that is not the kubelet's, consistently in the flag, the container port
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
