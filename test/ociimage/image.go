// Package ociimage builds the metrics-server container image from a static
// Linux binary without a Docker engine: one layer, the config the Dockerfile
// at the repository root gives its final stage, written as a `docker save`
// tarball that `docker load` and `ctr images import` both read.
//
// The output is reproducible: every timestamp is the given epoch, tar entries
// are sorted with fixed owner, group and mode, so the same binary, version
// and epoch always give the same bytes. The package knows nothing of
// Kubernetes or of how the binary was built.
//
// The image differs from the Dockerfile's on purpose in its base: the
// Dockerfile starts from gcr.io/distroless/static:nonroot, which adds CA
// certificates, tzdata and a home directory the server does not use; this
// image starts from nothing and adds only /etc/passwd and /etc/group (root
// and nobody, so user 65534 has a name) and an empty /tmp (mode 1777, where
// the install mounts its --cert-dir volume).
package ociimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// What the Dockerfile's final stage sets; TestBuilderAgreesWithDockerfile
// keeps the two in step.
const (
	// BinaryPath is where the binary lives in the image (the Dockerfile's COPY destination).
	BinaryPath = "/metrics-server"
	// User is the Dockerfile's USER: nobody, not root.
	User = "65534:65534"
	// VersionLabel carries the server's version (the Makefile's VERSION).
	VersionLabel = "org.opencontainers.image.version"
	// RevisionLabel carries the git commit the binary was built from.
	RevisionLabel = "org.opencontainers.image.revision"
	// Path is the PATH the distroless base sets; kept so `kubectl exec` finds nothing surprising.
	Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// maxBinarySize bounds what Build reads into memory.
const maxBinarySize = 512 << 20

// Entrypoint is the Dockerfile's ENTRYPOINT.
func Entrypoint() []string { return []string{BinaryPath} }

// Labels are the image labels for a version and a git commit.
func Labels(version, revision string) map[string]string {
	return map[string]string{VersionLabel: version, RevisionLabel: revision}
}

// Options say what to put in the image. All fields are required.
type Options struct {
	// Binary is the path of a static Linux ELF executable.
	Binary string
	// Version and Revision fill the labels.
	Version, Revision string
	// Created is the time stamped on the image and on every file in it.
	Created time.Time
}

// Build returns the image for opts. The architecture is read from the
// binary's ELF header; a binary that is not a static Linux ELF executable is
// refused with an error naming it.
func Build(opts Options) (v1.Image, error) {
	if opts.Binary == "" || opts.Version == "" || opts.Revision == "" {
		return nil, errors.New("binary, version and revision are all required")
	}
	if opts.Created.IsZero() {
		return nil, errors.New("a creation time is required (the build must not stamp the current time)")
	}
	bin, err := readBinary(opts.Binary)
	if err != nil {
		return nil, err
	}
	arch, err := elfArch(opts.Binary, bin)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(bin, opts.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", opts.Binary, err)
	}

	created := v1.Time{Time: opts.Created.UTC()}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			User:       User,
			Entrypoint: Entrypoint(),
			Env:        []string{"PATH=" + Path},
			Labels:     Labels(opts.Version, opts.Revision),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "ociimage: COPY metrics-server " + BinaryPath,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("add layer of %s: %w", opts.Binary, err)
	}
	return img, nil
}

func readBinary(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBinarySize+1))
	if err != nil {
		return nil, fmt.Errorf("read binary %s: %w", path, err)
	}
	if len(b) > maxBinarySize {
		return nil, fmt.Errorf("binary %s is larger than %d MiB", path, maxBinarySize>>20)
	}
	return b, nil
}

// elfArch returns the GOARCH of a static Linux ELF executable.
func elfArch(path string, bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("binary %s is not a Linux ELF executable (build it with GOOS=linux CGO_ENABLED=0): %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		return "", fmt.Errorf("binary %s is an ELF %s, not a static executable", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("binary %s is dynamically linked; the image has no libc (build it with CGO_ENABLED=0)", path)
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	default:
		return "", fmt.Errorf("binary %s is for machine %s, which this builder does not map to a GOARCH", path, f.Machine)
	}
}

// rootfs is the image's only layer: an uncompressed tar, entries sorted by
// name, owned by root with fixed modes and the given time.
func rootfs(bin []byte, mtime time.Time) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		dir  bool
		body []byte
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnobody:x:65534:\n")},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")},
		{name: BinaryPath[1:], mode: 0o755, body: bin},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}
