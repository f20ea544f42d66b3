package kubelet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
)

func TestRestConfigFor(t *testing.T) {
	base := &rest.Config{
		Host:        "https://apiserver:6443",
		BearerToken: "sa-token",
		TLSClientConfig: rest.TLSClientConfig{
			CAData:     []byte("apiserver-ca"),
			CertData:   []byte("apiserver-client-cert"),
			KeyData:    []byte("apiserver-client-key"),
			ServerName: "kubernetes.default.svc",
		},
	}
	h1 := []string{"http/1.1"}
	tests := []struct {
		name       string
		opts       TLSOptions
		wantScheme string
		wantTLS    rest.TLSClientConfig
		wantToken  string
	}{
		{
			name:       "server credentials pass through, server name dropped",
			wantScheme: "https",
			wantTLS:    rest.TLSClientConfig{CAData: []byte("apiserver-ca"), CertData: []byte("apiserver-client-cert"), KeyData: []byte("apiserver-client-key"), NextProtos: h1},
			wantToken:  "sa-token",
		},
		{
			name:       "CA file replaces CA data",
			opts:       TLSOptions{CAFile: "/etc/kubelet-ca.crt"},
			wantScheme: "https",
			wantTLS:    rest.TLSClientConfig{CAFile: "/etc/kubelet-ca.crt", CertData: []byte("apiserver-client-cert"), KeyData: []byte("apiserver-client-key"), NextProtos: h1},
			wantToken:  "sa-token",
		},
		{
			name:       "insecure skips verification and drops the CA",
			opts:       TLSOptions{Insecure: true},
			wantScheme: "https",
			wantTLS:    rest.TLSClientConfig{Insecure: true, CertData: []byte("apiserver-client-cert"), KeyData: []byte("apiserver-client-key"), NextProtos: h1},
			wantToken:  "sa-token",
		},
		{
			name:       "client certificate replaces the server's",
			opts:       TLSOptions{CertFile: "/c.crt", KeyFile: "/c.key"},
			wantScheme: "https",
			wantTLS:    rest.TLSClientConfig{CAData: []byte("apiserver-ca"), CertFile: "/c.crt", KeyFile: "/c.key", NextProtos: h1},
			wantToken:  "sa-token",
		},
		{
			name:       "completely insecure: plain http and no credentials at all",
			opts:       TLSOptions{CompletelyInsecure: true},
			wantScheme: "http",
			wantTLS:    rest.TLSClientConfig{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, scheme := RestConfigFor(base, tt.opts)
			if scheme != tt.wantScheme {
				t.Errorf("scheme = %q, want %q", scheme, tt.wantScheme)
			}
			if diff := cmp.Diff(tt.wantTLS, got.TLSClientConfig); diff != "" {
				t.Errorf("TLS config (-want +got):\n%s", diff)
			}
			if got.BearerToken != tt.wantToken {
				t.Errorf("bearer token = %q, want %q", got.BearerToken, tt.wantToken)
			}
			if base.BearerToken != "sa-token" || string(base.TLSClientConfig.CAData) != "apiserver-ca" {
				t.Errorf("the base config was changed")
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]Endpoint{"auto": EndpointAuto, "summary": EndpointSummary, "Resource": EndpointResource} {
		got, err := ParseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseEndpoint("cadvisor"); err == nil {
		t.Errorf("ParseEndpoint(cadvisor) succeeded")
	}
}
