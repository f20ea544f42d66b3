package e2einstall

import (
	"testing"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// TestTestOverlayInstall installs manifests/overlays/test, the one manifest
// that skips TLS verification on both hops (for test clusters whose
// kubelets serve self-signed certificates), and checks that kubectl top is
// served through it and that it really is the only one: its APIServices
// carry insecureSkipTLSVerify and its server --kubelet-insecure-tls.
func TestTestOverlayInstall(t *testing.T) {
	in := install(t, "test-overlay", renderKustomize(t, "manifests/overlays/test"))
	r := startServer(t, in, localcluster.StartOptions{})
	if !hasArg(r.Args, "--kubelet-insecure-tls") {
		t.Errorf("the test overlay's server runs without --kubelet-insecure-tls: %v", r.Args)
	}
	waitAvailable(t, in)
	for _, name := range in.APIServices {
		if a := getAPIService(t, name); !a.Spec.InsecureSkipTLSVerify {
			t.Errorf("APIService %s of the test overlay: insecureSkipTLSVerify false, want true", name)
		}
	}
	waitTop(t)
}

func hasArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}
