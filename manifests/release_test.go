package manifests

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"testing"
)

// update rewrites the release file instead of checking it (make manifests).
var update = flag.Bool("update", false, "rewrite "+releaseFile+" from "+releaseOverlay+" instead of checking it")

const (
	// releaseFile is the single-file install, as upstream's
	// components.yaml: kubectl apply -f manifests/components.yaml.
	releaseFile    = "components.yaml"
	releaseOverlay = "overlays/release"
)

// releaseHeader opens the release file, saying where it comes from.
const releaseHeader = "# kubemetrics metrics-server: everything of manifests/overlays/release in one file\n" +
	"# (kubectl apply -f manifests/components.yaml). Rendered by `make manifests`\n" +
	"# with kustomize; do not edit: change manifests/base or the overlay instead.\n"

// TestReleaseFileIsCurrent fails when the committed release file is not
// what `kubectl kustomize manifests/overlays/release` renders now, so a
// change to the manifests cannot ship with a stale single-file install.
// `make manifests` (this test with -update) rewrites it.
func TestReleaseFileIsCurrent(t *testing.T) {
	want := append([]byte(releaseHeader), kustomize(t, releaseOverlay)...)
	if *update {
		if err := os.WriteFile(releaseFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(releaseFile)
	if err != nil {
		t.Fatalf("manifests/%s: %v; run make manifests and commit it", releaseFile, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("manifests/%s is stale: it differs from the render of manifests/%s %s; run make manifests and commit it", releaseFile, releaseOverlay, firstDifference(got, want))
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return fmt.Sprintf("from line %d (file %q, render %q)", i+1, gl, wl)
		}
	}
	return ""
}
