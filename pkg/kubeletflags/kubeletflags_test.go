package kubeletflags

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
)

// TestKubeletEndpointHelpSaysResourceFirst: in auto mode the client asks
// /metrics/resource first and falls back to /stats/summary; the help must
// say that order, not the reverse.
func TestKubeletEndpointHelpSaysResourceFirst(t *testing.T) {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	New().AddFlags(fs)
	usage := fs.Lookup("kubelet-endpoint").Usage
	_, auto, ok := strings.Cut(usage, "'auto'")
	if !ok {
		t.Fatalf("help %q does not describe 'auto'", usage)
	}
	resource, summary := strings.Index(auto, "/metrics/resource"), strings.Index(auto, "/stats/summary")
	if resource < 0 || summary < 0 || resource > summary {
		t.Errorf("help of 'auto' %q should name /metrics/resource first, then the /stats/summary fallback", auto)
	}
	retry := fs.Lookup("kubelet-endpoint-retry-after").Usage
	if !strings.Contains(retry, "/metrics/resource is tried again") {
		t.Errorf("help of --kubelet-endpoint-retry-after %q should say /metrics/resource is what is tried again", retry)
	}
}

// TestEphemeralStorageFlag: --kubelet-ephemeral-storage is off by default
// and reaches the client's config when set.
func TestEphemeralStorageFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--kubelet-ephemeral-storage"}, true}, {[]string{"--kubelet-ephemeral-storage=false"}, false}} {
		o := New()
		fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if errs := o.Validate(); len(errs) != 0 {
			t.Fatalf("%v: %v", tt.args, errs)
		}
		cfg, err := o.Config(&rest.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EphemeralStorage != tt.want {
			t.Errorf("%v: EphemeralStorage = %v, want %v", tt.args, cfg.EphemeralStorage, tt.want)
		}
	}
}
