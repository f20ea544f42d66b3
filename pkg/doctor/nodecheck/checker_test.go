package nodecheck

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

// TestNewChecker: the server the doctor found gives the args and the
// ServiceAccount, unless --server-args gives the args; no client, no
// checker.
func TestNewChecker(t *testing.T) {
	if NewChecker(Input{}) != nil {
		t.Error("a checker without a client")
	}
	node := nodeAt(t, "worker-3", "127.0.0.1:10250")
	found := doctor.Server{Deployment: "metrics-server", ServiceAccount: "monitoring/metrics-server",
		Args: []string{"/metrics-server", "--kubelet-preferred-address-types=ExternalIP"}}
	for _, tt := range []struct {
		name   string
		flags  []string
		server doctor.Server
		says   string
	}{
		{name: "the Deployment's args", server: found, says: "none of the address types [ExternalIP]"},
		{name: "--server-args win", flags: []string{"--server-args", "--kubelet-preferred-address-types=ExternalDNS  --kubelet-port=10250"}, server: found, says: "none of the address types [ExternalDNS]"},
		{name: "no Deployment: the server's defaults", server: doctor.Server{ServiceAccount: "monitoring/metrics-server"}, says: "the server asks the kubelet at worker-3:10250 (Hostname)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{}
			fs := pflag.NewFlagSet("doctor", pflag.ContinueOnError)
			in.AddFlags(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			in.Client, in.Rest, in.KubeletCA, in.Resolver = newCluster(t, []*corev1.Node{node}, nil, nil, nil), &rest.Config{}, newTestCA(t, "ca").pem(), fakeResolver{}
			got := NewChecker(in)(context.Background(), tt.server)
			var address, creds bool
			for _, f := range got {
				address = address || f.Check == CheckAddress && strings.Contains(f.Message, tt.says)
				// The fake API issues tokens in kube-system only.
				creds = creds || f.Check == CheckCredentials && f.Target == "serviceaccount/monitoring/metrics-server"
			}
			if !address || !creds {
				t.Errorf("no address finding saying %q (%v) or no token request for monitoring/metrics-server (%v):\n%s", tt.says, address, creds, dump(got))
			}
		})
	}
}
