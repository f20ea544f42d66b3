package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// staticBinary builds a tiny static linux/amd64 program and returns its path.
func staticBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build a test binary: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"tiny\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test binary: %v\n%s", err, b)
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func buildTo(t *testing.T, opts Options, ref, out string) {
	t.Helper()
	img, err := Build(opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := WriteFile(out, ref, img); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
}

type layerFile struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Uname    string
	Gname    string
	ModTime  time.Time
	Size     int64
}

func TestImageReadBack(t *testing.T) {
	bin := staticBinary(t)
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1764950000, 0).UTC()
	const ref = "kubemetrics/metrics-server:v0.1.0-dev-abc1234"
	out := filepath.Join(t.TempDir(), "image.tar")
	buildTo(t, Options{Binary: bin, Version: "v0.1.0-dev+abc1234", Revision: "abc1234def", Created: epoch}, ref, out)

	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read %s back as %s: %v", out, ref, err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(out) })
	if err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m) != 1 || !cmp.Equal(m[0].RepoTags, []string{ref}) {
		t.Errorf("manifest.json = %+v, want one image tagged %s (what docker load and ctr import name it)", m, ref)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		User:       "65534:65534",
		Entrypoint: []string{"/metrics-server"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels: map[string]string{
			"org.opencontainers.image.version":  "v0.1.0-dev+abc1234",
			"org.opencontainers.image.revision": "abc1234def",
		},
	}
	if diff := cmp.Diff(want, cfg.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if !cfg.Created.Time.Equal(epoch) {
		t.Errorf("created = %v, want the epoch %v", cfg.Created.Time, epoch)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []layerFile
	var gotBin []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		got = append(got, layerFile{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Uname: h.Uname, Gname: h.Gname, ModTime: h.ModTime.UTC(), Size: h.Size})
		if h.Name == "metrics-server" {
			if gotBin, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	file := func(name string, typ byte, mode, size int64) layerFile {
		return layerFile{Name: name, Type: typ, Mode: mode, ModTime: epoch, Size: size}
	}
	wantFiles := []layerFile{
		file("etc/", tar.TypeDir, 0o755, 0),
		file("etc/group", tar.TypeReg, 0o644, 26),
		file("etc/passwd", tar.TypeReg, 0o644, 91),
		file("metrics-server", tar.TypeReg, 0o755, int64(len(binBytes))),
		file("tmp/", tar.TypeDir, 0o1777, 0),
	}
	if diff := cmp.Diff(wantFiles, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
	if !bytes.Equal(gotBin, binBytes) {
		t.Errorf("/metrics-server in the layer (%d bytes) is not the binary given (%d bytes)", len(gotBin), len(binBytes))
	}
}

func TestImageIsReproducible(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	opts := Options{Binary: bin, Version: "v1.2.3", Revision: "deadbeef", Created: time.Unix(1764950000, 0)}
	const ref = "kubemetrics/metrics-server:v1.2.3"
	first, second, later := filepath.Join(dir, "1.tar"), filepath.Join(dir, "2.tar"), filepath.Join(dir, "3.tar")
	buildTo(t, opts, ref, first)
	// A file touched after the first build must not change the second.
	if err := os.Chtimes(bin, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	buildTo(t, opts, ref, second)
	a, b := sha256File(t, first), sha256File(t, second)
	if a != b {
		t.Errorf("two builds of the same inputs differ: sha256 %s and %s", a, b)
	}
	t.Logf("sha256 of both tarballs: %s", a)

	// The comparison can fail: another epoch gives other bytes.
	opts.Created = opts.Created.Add(time.Second)
	buildTo(t, opts, ref, later)
	if c := sha256File(t, later); c == a {
		t.Errorf("a build with another epoch has the same sha256 %s: the epoch is not stamped", c)
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1764950000, 0)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"missing binary", Options{Binary: filepath.Join(dir, "nope"), Version: "v1", Revision: "r", Created: epoch}, "nope"},
		{"not an ELF file", Options{Binary: script, Version: "v1", Revision: "r", Created: epoch}, "script.sh is not a Linux ELF executable"},
		{"no version", Options{Binary: script, Revision: "r", Created: epoch}, "required"},
		{"no time", Options{Binary: script, Version: "v1", Revision: "r"}, "creation time is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Build error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteFileRefusesBadReference(t *testing.T) {
	bin := staticBinary(t)
	img, err := Build(Options{Binary: bin, Version: "v1", Revision: "r", Created: time.Unix(1764950000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, ref := range []string{"kubemetrics/metrics-server", "kubemetrics/metrics-server:v0.1.0-dev+abc", "Kube/Metrics:v1"} {
		t.Run(ref, func(t *testing.T) {
			out := filepath.Join(dir, "image.tar")
			err := WriteFile(out, ref, img)
			if err == nil || !strings.Contains(err.Error(), ref) {
				t.Errorf("WriteFile(%q) error = %v, want one naming the reference", ref, err)
			}
			if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("WriteFile(%q) left %s behind (stat: %v)", ref, out, statErr)
			}
		})
	}
}
