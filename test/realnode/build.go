//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// Built is what Build makes in a run's folder.
type Built struct {
	// Workload is the static cmd/workload binary (the pause and workload
	// images).
	Workload string
	// Server is our binary, for doctor and status runs from this machine.
	Server string
	// Image is our image's reference as manifests/components.yaml names
	// it, and ImageTar its tarball made by `make image` under that name.
	Image, ImageTar string
}

// Build compiles the workload and our server into dir and makes our image
// with `make image` in repo, named as the release manifest names it, so
// that manifest and the chart's defaults run it unchanged.
func Build(ctx context.Context, repo, dir string) (Built, error) {
	b := Built{Workload: filepath.Join(dir, "workload"), Server: filepath.Join(dir, "metrics-server")}
	if err := goBuild(ctx, filepath.Join(repo, "test"), b.Workload, "-tags", "realnode", "./realnode/cmd/workload"); err != nil {
		return b, err
	}
	if err := goBuild(ctx, repo, b.Server, "./cmd/metrics-server"); err != nil {
		return b, err
	}
	var err error
	if b.Image, err = ComponentsImage(filepath.Join(repo, "manifests/components.yaml")); err != nil {
		return b, err
	}
	b.ImageTar = filepath.Join(dir, "metrics-server-image.tar")
	mk := exec.CommandContext(ctx, "make", "--no-print-directory", "image", "IMAGE="+b.Image, "IMAGE_TAR="+b.ImageTar)
	mk.Dir = repo
	if out, err := mk.CombinedOutput(); err != nil {
		return b, fmt.Errorf("make image: %v: %s", err, out)
	}
	return b, nil
}

func goBuild(ctx context.Context, dir, out string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", out}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", args[len(args)-1], err, b)
	}
	return nil
}

var imageLine = regexp.MustCompile(`(?m)^\s+image:\s*(\S+)\s*$`)

// ComponentsImage is the one image the release manifest runs.
func ComponentsImage(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	m := imageLine.FindAllSubmatch(b, -1)
	if len(m) != 1 {
		return "", fmt.Errorf("%s names %d images, want 1", path, len(m))
	}
	return string(m[0][1]), nil
}
