package kubelet

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeAddress: the exported choice is the client's, defaults included.
func TestNodeAddress(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-3"}}
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.3.17"},
		{Type: corev1.NodeHostName, Address: "worker-3"},
	}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = 10255
	for _, tt := range []struct {
		name    string
		cfg     Config
		want    string
		wantErr string
	}{
		{name: "defaults: Hostname first, port 10250", want: "worker-3:10250"},
		{name: "InternalIP and the status port", cfg: Config{AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, UseNodeStatusPort: true}, want: "10.0.3.17:10255"},
		{name: "no such type", cfg: Config{AddressTypes: []corev1.NodeAddressType{corev1.NodeExternalIP}}, wantErr: "--kubelet-preferred-address-types"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NodeAddress(node, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NodeAddress = %q, %v; want an error naming %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NodeAddress = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestExplainTLS: the client's words, cut into the cause and the fix.
func TestExplainTLS(t *testing.T) {
	for _, tt := range []struct {
		name       string
		err        error
		cause, fix string
	}{
		{name: "no IP SAN", err: x509.HostnameError{Host: "10.0.3.17", Certificate: &x509.Certificate{DNSNames: []string{"worker-3"}}},
			cause: "has no IP SAN for the address asked, 10.0.3.17 (its SANs: DNS:worker-3)", fix: "--kubelet-preferred-address-types"},
		{name: "unknown authority", err: x509.UnknownAuthorityError{}, cause: "signed by an authority not trusted", fix: "serverTLSBootstrap: true"},
		{name: "not TLS", err: errors.New("x"), cause: "", fix: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cause, fix := ExplainTLS(tt.err, "10.0.3.17:10250")
			if !strings.Contains(cause, tt.cause) || (tt.cause == "") != (cause == "") {
				t.Errorf("cause %q, want %q", cause, tt.cause)
			}
			if !strings.Contains(fix, tt.fix) || (tt.fix == "") != (fix == "") {
				t.Errorf("fix %q, want %q", fix, tt.fix)
			}
			if strings.Contains(cause, "fix:") || strings.Contains(fix, "fix:") {
				t.Errorf("cause %q or fix %q keeps the joint", cause, fix)
			}
		})
	}
}
