package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallUpstreamRefusesAnotherBinary: a file where upstream's binary
// belongs that is not upstream v0.9.0 (here this test's own binary) is
// reported and left alone, not used and not overwritten.
func TestInstallUpstreamRefusesAnotherBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "metrics-server")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := InstallUpstream(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "is not upstream "+UpstreamModule+" "+UpstreamVersion) {
		t.Fatalf("InstallUpstream over another binary: %q, %v; want the binary refused", got, err)
	}
	after, err := os.ReadFile(bin)
	if err != nil || len(after) != len(b) {
		t.Errorf("the other binary was changed (%d bytes, was %d): %v", len(after), len(b), err)
	}
}
