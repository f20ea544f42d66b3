package localcluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAdaptArgs(t *testing.T) {
	mounts := map[string]string{"/tmp": "/work/r0/volumes/tmp-dir", "/tmp/certs": "/work/r0/volumes/certs"}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "the pod's port, address and credentials go; the rest stays",
			args: []string{"--cert-dir=/var/run/certs", "--secure-port=10250", "--bind-address=0.0.0.0", "--kubeconfig=/etc/kc", "--metric-resolution=15s", "--kubelet-use-node-status-port"},
			want: []string{"--cert-dir=/var/run/certs", "--metric-resolution=15s", "--kubelet-use-node-status-port"},
		},
		{
			name: "two-token flags of the pod go with their value",
			args: []string{"--secure-port", "4443", "--authentication-kubeconfig", "/etc/kc", "--v=2"},
			want: []string{"--v=2"},
		},
		{
			name: "paths under a mount move, the longest mount first",
			args: []string{"--cert-dir=/tmp", "--tls-cert-file=/tmp/certs/tls.crt", "--tls-private-key-file", "/tmp/certs/tls.key", "--log-file=/tmpfoo/x"},
			want: []string{"--cert-dir=/work/r0/volumes/tmp-dir", "--tls-cert-file=/work/r0/volumes/certs/tls.crt", "--tls-private-key-file", "/work/r0/volumes/certs/tls.key", "--log-file=/tmpfoo/x"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, adaptArgs(c.args, mounts)); diff != "" {
				t.Errorf("adaptArgs(%v) (-want +got):\n%s", c.args, diff)
			}
		})
	}
}
