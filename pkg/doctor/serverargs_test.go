package doctor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseServerArgs: the server's args are read as pflag reads them,
// where the hand-written reader this replaces read them otherwise (a list
// flag given twice, a bool flag followed by a word, a shorthand).
func TestParseServerArgs(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want map[string]string
		// selector is the kubelet options' --node-selector.
		selector string
		wantErr  bool
	}{
		{
			name: "a list flag given twice appends, as the server's pflag does",
			args: []string{"--requestheader-allowed-names=front-proxy-client", "--requestheader-allowed-names", "aggregator"},
			want: map[string]string{"requestheader-allowed-names": "front-proxy-client,aggregator"},
		},
		{
			name: "a bool flag takes no separate value",
			args: []string{"/metrics-server", "--authentication-skip-lookup", "false"},
			want: map[string]string{"authentication-skip-lookup": "true"},
		},
		{
			name: "set empty is set",
			args: []string{"--tls-bootstrap-apiservices=", "--tls-bootstrap-secret=kube-system/metrics-server-tls"},
			want: map[string]string{"tls-bootstrap-apiservices": "", "tls-bootstrap-secret": "kube-system/metrics-server-tls"},
		},
		{
			name:     "unknown flags and their values are skipped; kubelet flags by the server's definitions, shorthand too",
			args:     []string{"--cert-dir", "/tmp", "--secure-port", "10250", "--tls-cert-file", "/etc/tls/tls.crt", "-l", "role=worker", "--kubelet-insecure-tls"},
			want:     map[string]string{"tls-cert-file": "/etc/tls/tls.crt", "node-selector": "role=worker", "kubelet-insecure-tls": "true"},
			selector: "role=worker",
		},
		{
			name: "a value the server refuses", args: []string{"--kubelet-port=ten", "--tls-cert-file=/x"},
			want: map[string]string{}, wantErr: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseServerArgs(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, f.set); diff != "" {
				t.Errorf("flags set (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, flagValues(tt.args)); diff != "" {
				t.Errorf("flagValues (-want +got):\n%s", diff)
			}
			if f.Kubelet.NodeSelector != tt.selector {
				t.Errorf("--node-selector %q, want %q", f.Kubelet.NodeSelector, tt.selector)
			}
			if v, ok := f.Value("tls-cert-file"); ok != (tt.want["tls-cert-file"] != "") || v != tt.want["tls-cert-file"] {
				t.Errorf("Value(tls-cert-file) = %q, %v", v, ok)
			}
		})
	}
}
