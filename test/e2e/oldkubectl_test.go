package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubectlThatKnowsOnlyV1beta1 runs kubectl 1.32 (built from its own
// module by test/tools/build-k8s.sh): it predates metrics.k8s.io/v1 and
// must keep working, through v1beta1, while v1 is served and preferred.
func TestKubectlThatKnowsOnlyV1beta1(t *testing.T) {
	pods := setupTop(t)
	old := filepath.Join(repoRoot, "test/.cache/bin/v1.37.2/kubectl-1.32")
	run := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, old, append([]string{"--kubeconfig", cluster.AdminKubeconfig}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	version, _, err := run("version", "--client")
	if err != nil || !strings.Contains(version, "v1.32") {
		t.Fatalf("%s is not kubectl 1.32 (%v): %s; build it with test/tools/build-k8s.sh", old, err, version)
	}
	waitFor(t, 3*resolution, func() error {
		out, log, err := run("top", "pod", "-n", "e2e-top", "-v=6")
		if err != nil {
			return fmt.Errorf("%v: %s", err, log)
		}
		if !strings.Contains(log, "/apis/metrics.k8s.io/v1beta1/namespaces/e2e-top/pods") {
			return fmt.Errorf("kubectl 1.32 did not read v1beta1:\n%s", log)
		}
		_, rows := table(out)
		if len(rows) != 4 {
			return fmt.Errorf("want the 4 e2e-top pods:\n%s", out)
		}
		for _, r := range rows {
			want := pods["e2e-top/"+r[0]]
			if got := milli(t, r[1]); !closeCPU(got, want.milliCPU) {
				return fmt.Errorf("pod %s CPU %dm, want %dm", r[0], got, want.milliCPU)
			}
			if got := mi(t, r[2]); got != want.memoryMi {
				return fmt.Errorf("pod %s memory %dMi, want %dMi", r[0], got, want.memoryMi)
			}
		}
		return nil
	})
}
