package kubelet

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLocate: the address and endpoint the client reports for a node, by
// mode, annotation and fallback state.
func TestLocate(t *testing.T) {
	node := func(annotated bool, addrs ...corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-7"},
			Status: corev1.NodeStatus{Addresses: addrs, DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}}}
		if annotated {
			n.Annotations = map[string]string{ResourcePathAnnotation: "/metrics/nodes/worker-7/metrics/resource"}
		}
		return n
	}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.3.7"}
	hostname := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "worker-7"}
	tests := []struct {
		name         string
		endpoint     Endpoint
		node         *corev1.Node
		fellBack     bool
		wantAddress  string
		wantEndpoint string
	}{
		{name: "auto", endpoint: EndpointAuto, node: node(false, hostname, internal), wantAddress: "10.0.3.7:10250", wantEndpoint: "/metrics/resource"},
		{name: "auto, on the fallback", endpoint: EndpointAuto, node: node(false, internal), fellBack: true, wantAddress: "10.0.3.7:10250", wantEndpoint: "/stats/summary"},
		{name: "auto, annotated", endpoint: EndpointAuto, node: node(true, internal), wantAddress: "10.0.3.7:10250", wantEndpoint: "/metrics/nodes/worker-7/metrics/resource"},
		{name: "summary", endpoint: EndpointSummary, node: node(true, internal), wantAddress: "10.0.3.7:10250", wantEndpoint: "/stats/summary"},
		{name: "resource", endpoint: EndpointResource, node: node(false, internal), fellBack: true, wantAddress: "10.0.3.7:10250", wantEndpoint: "/metrics/resource"},
		{name: "no address of the types", endpoint: EndpointAuto, node: node(false, hostname), wantAddress: "", wantEndpoint: "/metrics/resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newTestClient(t, tt.endpoint, nil)
			if tt.fellBack {
				c.setFallback(context.Background(), tt.node.Name, &ScrapeError{Reason: ReasonHTTPStatus, Status: 404, Err: errors.New("http status 404")})
			}
			addr, ep := c.Locate(tt.node)
			if addr != tt.wantAddress || ep != tt.wantEndpoint {
				t.Errorf("Locate: %q %q, want %q %q", addr, ep, tt.wantAddress, tt.wantEndpoint)
			}
			if tt.fellBack && tt.endpoint == EndpointAuto {
				// Past the retry period the next request asks the resource
				// endpoint again.
				clk.Step(10*time.Minute + time.Second)
				if _, ep := c.Locate(tt.node); ep != "/metrics/resource" {
					t.Errorf("after the retry period: %q, want /metrics/resource", ep)
				}
			}
		})
	}
}
