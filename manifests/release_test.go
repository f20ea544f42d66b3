package manifests

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
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

// chartFile is the Helm chart's metadata, whose appVersion is the image
// tag the chart deploys.
const chartFile = "../charts/metrics-server/Chart.yaml"

// TestEveryInstallPinsTheChartVersion: the release overlay's image tag is
// the chart's appVersion, a version (vMAJOR.MINOR.PATCH), and every
// install's Deployment runs exactly that tag: never :latest nor an
// untagged image, which imagePullPolicy IfNotPresent would leave at
// whatever each node pulled first, so two replicas could run different
// code and an upgrade would change nothing.
func TestEveryInstallPinsTheChartVersion(t *testing.T) {
	b, err := os.ReadFile(chartFile)
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatalf("%s: %v", chartFile, err)
	}
	if !regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(chart.AppVersion) {
		t.Fatalf("%s: appVersion %q is not a version vMAJOR.MINOR.PATCH", chartFile, chart.AppVersion)
	}
	b, err = os.ReadFile(releaseOverlay + "/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Images []struct {
			Name   string `json:"name"`
			NewTag string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	if len(k.Images) != 1 || k.Images[0].NewTag != chart.AppVersion {
		t.Errorf("%s pins images %+v, want the one image at the chart's appVersion %s", releaseOverlay, k.Images, chart.AppVersion)
	}
	for _, dir := range installs(t) {
		for _, d := range deployments(t, render(t, dir)) {
			for _, c := range d.Spec.Template.Spec.Containers {
				_, tag, _ := strings.Cut(c.Image, ":")
				if tag != chart.AppVersion {
					t.Errorf("%s: Deployment %s runs image %q (pull policy %s), want tag %s, the chart's appVersion", dir, d.Name, c.Image, c.ImagePullPolicy, chart.AppVersion)
				}
			}
		}
	}
}
