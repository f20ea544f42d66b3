package kubeletflags

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
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
