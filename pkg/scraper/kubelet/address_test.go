package kubelet

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestHostPort(t *testing.T) {
	all := []corev1.NodeAddress{
		{Type: corev1.NodeExternalIP, Address: "203.0.113.9"},
		{Type: corev1.NodeInternalIP, Address: "10.0.0.7"},
		{Type: corev1.NodeInternalIP, Address: "10.0.0.8"},
		{Type: corev1.NodeHostName, Address: "worker-1"},
		{Type: corev1.NodeInternalDNS, Address: "worker-1.cluster.internal"},
	}
	tests := []struct {
		name          string
		addrs         []corev1.NodeAddress
		statusPort    int32
		priority      []corev1.NodeAddressType
		useStatusPort bool
		want          string
		wantErr       string
	}{
		{name: "default priority picks the hostname", addrs: all, priority: DefaultAddressTypes, want: "worker-1:10250"},
		{name: "first address of the first type present", addrs: all, priority: []corev1.NodeAddressType{corev1.NodeInternalIP}, want: "10.0.0.7:10250"},
		{name: "priority order, not address order", addrs: all, priority: []corev1.NodeAddressType{corev1.NodeExternalDNS, corev1.NodeExternalIP, corev1.NodeInternalIP}, want: "203.0.113.9:10250"},
		{name: "status port used when asked", addrs: all, statusPort: 10255, useStatusPort: true, priority: []corev1.NodeAddressType{corev1.NodeInternalIP}, want: "10.0.0.7:10255"},
		{name: "status port ignored unless asked", addrs: all, statusPort: 10255, priority: []corev1.NodeAddressType{corev1.NodeInternalIP}, want: "10.0.0.7:10250"},
		{name: "zero status port falls back to the default", addrs: all, useStatusPort: true, priority: []corev1.NodeAddressType{corev1.NodeInternalIP}, want: "10.0.0.7:10250"},
		{name: "IPv6 is bracketed", addrs: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "fd00::7"}}, priority: DefaultAddressTypes, want: "[fd00::7]:10250"},
		{name: "empty address skipped", addrs: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: ""}, {Type: corev1.NodeInternalIP, Address: "10.0.0.7"}}, priority: DefaultAddressTypes, want: "10.0.0.7:10250"},
		{name: "no matching type", addrs: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.9"}}, priority: []corev1.NodeAddressType{corev1.NodeInternalIP}, wantErr: "none of the address types [InternalIP] (it has [ExternalIP])"},
		{name: "no addresses at all", priority: DefaultAddressTypes, wantErr: "none of the address types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &corev1.Node{Status: corev1.NodeStatus{
				Addresses:       tt.addrs,
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: tt.statusPort}},
			}}
			got, err := hostPort(node, tt.priority, 10250, tt.useStatusPort)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("hostPort = %q, want %q", got, tt.want)
			}
		})
	}
}
