package e2eswap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upstreamModule is the upstream release compared against: the binary the
// Makefile's $(UPSTREAM) target installs.
const upstreamModule = "sigs.k8s.io/metrics-server/cmd/metrics-server@v0.9.0"

// upstreamBinary returns upstream metrics-server v0.9.0 from the
// repository's _output/upstream (make's $(UPSTREAM)), installing it there
// with go install when it is missing, and checks from its build info that
// it is v0.9.0. It fails the test with the reason when it cannot.
func upstreamBinary(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := filepath.Join(e.suite.Repo, "_output", "upstream")
	bin := filepath.Join(dir, "metrics-server")
	if _, err := os.Stat(bin); err != nil {
		began := time.Now()
		ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		install := exec.CommandContext(ctx, "go", "install", upstreamModule)
		install.Env = append(os.Environ(), "GOBIN="+dir)
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("upstream metrics-server is not at %s and go install %s failed (%v); make %s builds it:\n%s",
				bin, upstreamModule, err, "_output/upstream/metrics-server", out)
		}
		t.Logf("installed %s into %s in %v", upstreamModule, dir, time.Since(began).Round(time.Second))
	}
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("reading the build info of %s: %v\n%s", bin, err, out)
	}
	if want := fmt.Sprintf("mod\t%s\t%s", "sigs.k8s.io/metrics-server", "v0.9.0"); !strings.Contains(string(out), want) {
		t.Fatalf("%s is not upstream v0.9.0 (no %q in its build info); remove it and run make _output/upstream/metrics-server:\n%s", bin, want, out)
	}
	return bin
}
