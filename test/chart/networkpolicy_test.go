package chart

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubernetes/pkg/apis/networking"
	networkingconv "k8s.io/kubernetes/pkg/apis/networking/v1"
	"k8s.io/kubernetes/pkg/apis/networking/validation"
)

// validNetworkPolicy runs the kube-apiserver's own validation of a
// NetworkPolicy (k8s.io/kubernetes/pkg/apis/networking/validation) and
// returns its errors.
func validNetworkPolicy(t *testing.T, np networkingv1.NetworkPolicy) []string {
	t.Helper()
	var internal networking.NetworkPolicy
	if err := networkingconv.Convert_v1_NetworkPolicy_To_networking_NetworkPolicy(&np, &internal, nil); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range validation.ValidateNetworkPolicy(&internal, validation.NetworkPolicyValidationOptions{}) {
		out = append(out, e.Error())
	}
	return out
}

// peers describes a rule's peers, one string each: "cidr X", or
// "namespaces {k:v} pods {k:v}".
func peers(ps []networkingv1.NetworkPolicyPeer) []string {
	var out []string
	for _, p := range ps {
		switch {
		case p.IPBlock != nil:
			out = append(out, "cidr "+p.IPBlock.CIDR)
		default:
			s := ""
			if p.NamespaceSelector != nil {
				s += "namespaces " + labelsOf(p.NamespaceSelector.MatchLabels)
			}
			if p.PodSelector != nil {
				s += " pods " + labelsOf(p.PodSelector.MatchLabels)
			}
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

func labelsOf(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

func ports(ps []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(*p.Protocol)+" "+p.Port.String())
	}
	return out
}

// TestNetworkPolicy renders networkPolicy.enabled with the kube-apiserver
// given as CIDRs and as selectors, and Prometheus by its namespace and
// pods: only they reach the serving port, the server reaches only the
// kubelets, the kube-apiserver and DNS, and the kube-apiserver's own
// validation accepts the policy.
func TestNetworkPolicy(t *testing.T) {
	https := intstr.FromString("https")
	for _, tc := range []struct {
		name            string
		values          []string
		apiServer, prom []string
		egress          [][]string
		egressTo        [][]string
	}{{
		name:      "CIDRs and Prometheus",
		values:    []string{"networkPolicy.ingress.apiServer.cidrs={10.0.0.0/24,fd00:10::/64}", "networkPolicy.ingress.prometheus.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring", "networkPolicy.ingress.prometheus.podSelector.matchLabels.app\\.kubernetes\\.io/name=prometheus", "serviceMonitor.enabled=true"},
		apiServer: []string{"cidr 10.0.0.0/24", "cidr fd00:10::/64"},
		prom:      []string{"namespaces {kubernetes.io/metadata.name=monitoring} pods {app.kubernetes.io/name=prometheus}"},
		egress:    [][]string{{"TCP 10250"}, {"TCP 443", "TCP 6443"}, {"UDP 53", "TCP 53"}},
		egressTo:  [][]string{nil, nil, nil},
	}, {
		name:      "a kube-apiserver that is a pod, egress narrowed, no DNS",
		values:    []string{"networkPolicy.ingress.apiServer.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=kube-system", "networkPolicy.ingress.apiServer.podSelector.matchLabels.component=kube-apiserver", "networkPolicy.egress.kubelet.cidrs={192.168.0.0/16}", "networkPolicy.egress.kubelet.ports={10250,10255}", "networkPolicy.egress.apiServer.cidrs={10.96.0.1/32,192.168.0.10/32}", "networkPolicy.egress.dns=false"},
		apiServer: []string{"namespaces {kubernetes.io/metadata.name=kube-system} pods {component=kube-apiserver}"},
		egress:    [][]string{{"TCP 10250", "TCP 10255"}, {"TCP 443", "TCP 6443"}},
		egressTo:  [][]string{{"cidr 192.168.0.0/16"}, {"cidr 10.96.0.1/32", "cidr 192.168.0.10/32"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustRender(t, append([]string{"networkPolicy.enabled=true"}, tc.values...)...)
			var np networkingv1.NetworkPolicy
			objs.decode(t, "NetworkPolicy/metrics-server", &np)
			if errs := validNetworkPolicy(t, np); len(errs) > 0 {
				t.Errorf("the kube-apiserver refuses the policy: %v", errs)
			}
			checkSelects(t, "the policy's podSelector", np.Spec.PodSelector.MatchLabels, deployment(t, objs).Spec.Template.Labels)
			if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes); diff != "" {
				t.Errorf("policyTypes (-want +got):\n%s", diff)
			}
			wantIngress := [][]string{tc.apiServer}
			if tc.prom != nil {
				wantIngress = append(wantIngress, tc.prom)
			}
			var gotIngress [][]string
			for _, r := range np.Spec.Ingress {
				gotIngress = append(gotIngress, peers(r.From))
				if len(r.Ports) != 1 || *r.Ports[0].Protocol != corev1.ProtocolTCP || *r.Ports[0].Port != https {
					t.Errorf("ingress from %v on %v, want only the serving port (https)", peers(r.From), ports(r.Ports))
				}
			}
			if diff := cmp.Diff(wantIngress, gotIngress); diff != "" {
				t.Errorf("who may connect (-want +got):\n%s", diff)
			}
			var gotEgress, gotTo [][]string
			for _, r := range np.Spec.Egress {
				gotEgress = append(gotEgress, ports(r.Ports))
				gotTo = append(gotTo, peers(r.To))
			}
			if diff := cmp.Diff(tc.egress, gotEgress); diff != "" {
				t.Errorf("egress ports (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.egressTo, gotTo); diff != "" {
				t.Errorf("egress destinations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNetworkPolicyComponent checks manifests/components/network-policy:
// the kube-apiserver refuses it until an overlay replaces the placeholder
// CIDR, as its kustomization.yaml shows, and then it is the policy the
// chart renders for the same kube-apiserver CIDR and Prometheus.
func TestNetworkPolicyComponent(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests/components/network-policy/networkpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var component networkingv1.NetworkPolicy
	parse(t, "networkpolicy.yaml", b).decode(t, "NetworkPolicy/metrics-server", &component)
	if errs := validNetworkPolicy(t, component); len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "KUBE-APISERVER-CIDR") {
		t.Errorf("the placeholder is accepted (errors %v): an unpatched component would look like it works", errs)
	}
	// The patch of the kustomization's comment.
	component.Spec.Ingress[0].From[0].IPBlock.CIDR = "10.0.0.0/24"
	if errs := validNetworkPolicy(t, component); len(errs) > 0 {
		t.Errorf("the patched component is refused: %v", errs)
	}
	if diff := cmp.Diff(map[string]string{"k8s-app": "metrics-server"}, component.Spec.PodSelector.MatchLabels); diff != "" {
		t.Errorf("podSelector (-base's pod labels +component):\n%s", diff)
	}
	var chart networkingv1.NetworkPolicy
	mustRender(t, "networkPolicy.enabled=true", "networkPolicy.ingress.apiServer.cidrs={10.0.0.0/24}",
		"networkPolicy.ingress.prometheus.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
		"networkPolicy.ingress.prometheus.podSelector.matchLabels.app\\.kubernetes\\.io/name=prometheus",
	).decode(t, "NetworkPolicy/metrics-server", &chart)
	chart.Spec.PodSelector = component.Spec.PodSelector
	if diff := cmp.Diff(chart.Spec, component.Spec); diff != "" {
		t.Errorf("the component differs from the chart (-chart +component):\n%s", diff)
	}
}
