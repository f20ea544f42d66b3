package e2eswap

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// upstreamBinary returns upstream metrics-server v0.9.0 from the
// repository's _output/upstream (make's $(UPSTREAM)), built there when it
// is missing; it fails the test with the reason when it cannot.
func upstreamBinary(ctx context.Context, t *testing.T) string {
	t.Helper()
	bin, err := localcluster.InstallUpstream(ctx, filepath.Join(e.suite.Repo, "_output", "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
