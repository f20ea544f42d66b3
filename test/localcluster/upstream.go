package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The upstream release the tests and benchmarks compare against.
const (
	UpstreamModule  = "sigs.k8s.io/metrics-server"
	UpstreamVersion = "v0.9.0"
)

// InstallUpstream returns dir/metrics-server, upstream metrics-server
// UpstreamVersion: when it is missing it is built from the module proxy
// (go install, CGO off and -trimpath, so it also runs from a scratch
// image). A file there that is not that release is an error, never
// overwritten.
func InstallUpstream(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "metrics-server")
	if _, err := os.Stat(bin); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		pkg := UpstreamModule + "/cmd/metrics-server@" + UpstreamVersion
		install := exec.CommandContext(ctx, "go", "install", "-trimpath", pkg)
		install.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+dir)
		if out, err := install.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go install %s (needs the Go module proxy): %w\n%s", pkg, err, out)
		}
	}
	if err := checkUpstream(ctx, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// checkUpstream reads bin's build info and fails unless its main module
// is UpstreamModule at UpstreamVersion.
func checkUpstream(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		return fmt.Errorf("reading the build info of %s: %w\n%s", bin, err, out)
	}
	want := "mod\t" + UpstreamModule + "\t" + UpstreamVersion
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), want) {
			return nil
		}
	}
	return fmt.Errorf("%s is not upstream %s %s (no %q in its build info): remove it and it is built again", bin, UpstreamModule, UpstreamVersion, want)
}
