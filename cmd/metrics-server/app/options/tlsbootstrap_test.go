package options

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes/fake"
	aggfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
)

// TestTLSBootstrapFlags: the flags' defaults, and every bad value refused
// with its flag named, all at once.
func TestTLSBootstrapFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // parts of the errors, one each, in order
	}{
		{"off by default", nil, nil},
		{"the base manifests' value", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls"}, nil},
		{"other names", []string{"--tls-bootstrap-secret=monitoring/ms-serving", "--tls-bootstrap-service=ms", "--tls-bootstrap-apiservices=v1beta1.metrics.k8s.io"}, nil},
		{"no APIServices", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls", "--tls-bootstrap-apiservices="}, nil},
		{"no namespace", []string{"--tls-bootstrap-secret=metrics-server-tls"}, []string{"--tls-bootstrap-secret must be <namespace>/<name>"}},
		{"bad names", []string{"--tls-bootstrap-secret=Kube_System/metrics server", "--tls-bootstrap-service=9ms", "--tls-bootstrap-apiservices=metrics,v1.metrics.k8s.io"},
			[]string{`--tls-bootstrap-secret: namespace "Kube_System"`, `--tls-bootstrap-secret: name "metrics server"`, `--tls-bootstrap-service "9ms"`, `--tls-bootstrap-apiservices: "metrics" is not an APIService name`}},
		{"no cert dir", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls", "--cert-dir="}, []string{"--tls-bootstrap-secret needs a --cert-dir"}},
		{"own certificate wins", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls", "--cert-dir=", "--tls-cert-file=/tls/tls.crt", "--tls-private-key-file=/tls/tls.key"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			for _, f := range o.Flags().FlagSets {
				fs.AddFlagSet(f)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, err := range o.Validate() {
				if strings.Contains(err.Error(), "tls-bootstrap") {
					got = append(got, err.Error())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
	o := NewOptions()
	if diff := cmp.Diff([]string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}, o.TLSBootstrap.APIServices); diff != "" {
		t.Errorf("--tls-bootstrap-apiservices default (-want +got):\n%s", diff)
	}
	if o.TLSBootstrap.Secret != "" || o.TLSBootstrap.Service != "metrics-server" {
		t.Errorf("defaults: secret %q, service %q; want off and metrics-server", o.TLSBootstrap.Secret, o.TLSBootstrap.Service)
	}
}

// TestBootstrapServingCert: with the bootstrap on, the Secret's files in
// --cert-dir become the serving certificate; with --tls-cert-file given, or
// with the bootstrap off, nothing is read or written.
func TestBootstrapServingCert(t *testing.T) {
	for _, tc := range []struct {
		name, secret, certFile string
		on                     bool
	}{
		{"on", "kube-system/metrics-server-tls", "", true},
		{"off", "", "", false},
		{"own certificate", "kube-system/metrics-server-tls", "/tls/tls.crt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			dir := t.TempDir()
			o.TLSBootstrap.Secret = tc.secret
			o.SecureServing.ServerCert.CertDirectory = dir
			o.SecureServing.ServerCert.CertKey.CertFile = tc.certFile
			kube, agg := fake.NewClientset(), aggfake.NewClientset()
			loop, err := o.BootstrapServingCert(context.Background(), kube, agg.ApiregistrationV1())
			if err != nil {
				t.Fatal(err)
			}
			if (loop != nil) != tc.on {
				t.Errorf("loop returned %v, want %v", loop != nil, tc.on)
			}
			if !tc.on {
				if n := len(kube.Actions()); n != 0 {
					t.Errorf("%d API calls with the bootstrap off", n)
				}
				if o.SecureServing.ServerCert.CertKey.CertFile != tc.certFile {
					t.Errorf("--tls-cert-file became %q", o.SecureServing.ServerCert.CertKey.CertFile)
				}
				return
			}
			if got := o.SecureServing.ServerCert.CertKey; got.CertFile != dir+"/tls.pem" || got.KeyFile != dir+"/tls.pem" {
				t.Errorf("serving files %+v, want tls.pem in %s as both", got, dir)
			}
		})
	}
}
