package ociimage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteFile writes img tagged ref (for example kubemetrics/metrics-server:v0.1.0)
// to path as a `docker save` tarball (manifest.json, the config and the
// gzipped layer), which `docker load -i` and `ctr -n k8s.io images import`
// both read. The file appears whole or not at all: it is written beside path
// and renamed.
func WriteFile(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q (repository:tag, tag made of [A-Za-z0-9_.-]): %w", ref, err)
	}
	if !strings.HasSuffix(ref, ":"+tag.TagStr()) {
		return fmt.Errorf("image reference %q has no tag (want repository:tag)", ref)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename this finds nothing
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write image %s to %s: %w", ref, path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image %s to %s: %w", ref, path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	return nil
}
