package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Bounds on what an image may make us read into memory.
const (
	maxFileSize  = 512 << 20
	maxImageSize = 1 << 30
	maxFiles     = 10000
)

// imageDocument describes a `docker save` tarball holding one image: the
// image (its tag, config digest and layer digests) containing every regular
// file of its filesystem; its entrypoint, a Go binary, generated from its
// main module and that module's dependencies as in binaryDocument.
func imageDocument(tarPath string, o options) (document, error) {
	st, err := os.Stat(tarPath)
	if err != nil {
		return document{}, fmt.Errorf("image tarball: %w", err)
	}
	if st.Size() > maxImageSize {
		return document{}, fmt.Errorf("image tarball %s: %d bytes, over the bound of %d", tarPath, st.Size(), maxImageSize)
	}
	tarData, err := os.ReadFile(tarPath)
	if err != nil {
		return document{}, fmt.Errorf("read the image tarball: %w", err)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(tarPath) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return document{}, fmt.Errorf("image tarball %s: %w", tarPath, err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 {
		return document{}, fmt.Errorf("image tarball %s: want one image with one tag, found %d images", tarPath, len(manifest))
	}
	ref := manifest[0].RepoTags[0]
	tag, err := name.NewTag(ref)
	if err != nil {
		return document{}, fmt.Errorf("image tarball %s: tag %q: %w", tarPath, ref, err)
	}
	img, err := tarball.Image(opener, &tag)
	if err != nil {
		return document{}, fmt.Errorf("image tarball %s: %w", tarPath, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return document{}, fmt.Errorf("image %s: config: %w", ref, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return document{}, fmt.Errorf("image %s: config digest: %w", ref, err)
	}
	if len(cfg.Config.Entrypoint) == 0 {
		return document{}, fmt.Errorf("image %s has no entrypoint: which file is the binary?", ref)
	}
	entrypoint := cfg.Config.Entrypoint[0]

	files, contents, err := regularFiles(img)
	if err != nil {
		return document{}, fmt.Errorf("image %s: %w", ref, err)
	}
	binData, ok := contents[path.Clean("/"+entrypoint)]
	if !ok {
		return document{}, fmt.Errorf("image %s: its entrypoint %s is not a regular file in its layers", ref, entrypoint)
	}
	bf, gp, err := describeBinary(entrypoint, binData, o)
	if err != nil {
		return document{}, fmt.Errorf("image %s: %w", ref, err)
	}
	for i := range files {
		if files[i].SPDXID == bf.SPDXID {
			files[i].Comment = bf.Comment
		}
	}

	annotations := []annotation{{Annotator: annotator, Date: o.created(), Type: "OTHER", Comment: "image config digest (image id): " + id.String()}}
	layers, err := img.Layers()
	if err != nil {
		return document{}, fmt.Errorf("image %s: layers: %w", ref, err)
	}
	layerLines := make([]string, 0, len(layers))
	for i, l := range layers {
		digest, err := l.Digest()
		if err != nil {
			return document{}, fmt.Errorf("image %s: layer %d: %w", ref, i, err)
		}
		diffID, err := l.DiffID()
		if err != nil {
			return document{}, fmt.Errorf("image %s: layer %d: %w", ref, i, err)
		}
		line := fmt.Sprintf("image layer %d/%d: digest %s, diff id %s", i+1, len(layers), digest, diffID)
		layerLines = append(layerLines, line)
		annotations = append(annotations, annotation{Annotator: annotator, Date: o.created(), Type: "OTHER", Comment: line})
	}

	image := pkg{
		SPDXID:           spdxID("Package-image", ref),
		Name:             tag.Context().RepositoryStr(),
		VersionInfo:      tag.TagStr(),
		PackageFileName:  path.Base(tarPath),
		DownloadLocation: noAssertion,
		FilesAnalyzed:    true,
		VerificationCode: verificationCodeOf(files),
		Checksums:        []checksum{{Algorithm: "SHA256", Value: sha256Hex(tarData)}},
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		Comment: fmt.Sprintf("Container image %s, a `docker save` tarball (its SHA-256 is the checksum). Config digest (image id) %s, %s/%s. %s.",
			ref, id, cfg.OS, cfg.Architecture, strings.Join(layerLines, "; ")),
		ExternalRefs:          []externalRef{purlRef(dockerPURL(tag))},
		PrimaryPackagePurpose: "CONTAINER",
		Annotations:           annotations,
	}
	for _, f := range files {
		image.HasFiles = append(image.HasFiles, f.SPDXID)
	}

	doc := newDocument(ref, sha256Hex(tarData), o)
	doc.DocumentDescribes = []string{image.SPDXID}
	doc.Packages = append([]pkg{image, gp.main}, gp.deps...)
	doc.Files = files
	doc.Relationships = []relationship{{documentID, "DESCRIBES", image.SPDXID}}
	for _, f := range files {
		doc.Relationships = append(doc.Relationships, relationship{image.SPDXID, "CONTAINS", f.SPDXID})
	}
	doc.Relationships = append(doc.Relationships, relationship{image.SPDXID, "CONTAINS", gp.main.SPDXID})
	doc.Relationships = append(doc.Relationships, goRelationships(bf, gp)...)
	return doc, nil
}

// regularFiles reads the image's flattened filesystem: a file entry for
// every regular file, sorted by name, and the contents by absolute path.
func regularFiles(img v1.Image) ([]file, map[string][]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	contents := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the layers: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if len(contents) >= maxFiles {
			return nil, nil, fmt.Errorf("more than %d files", maxFiles)
		}
		if h.Size > maxFileSize || total+h.Size > maxImageSize {
			return nil, nil, fmt.Errorf("file %s (%d bytes): over the bounds of %d bytes a file, %d in all", h.Name, h.Size, maxFileSize, maxImageSize)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, nil, fmt.Errorf("read %s from the layers: %w", h.Name, err)
		}
		total += int64(len(data))
		contents[path.Clean("/"+h.Name)] = data
	}
	names := make([]string, 0, len(contents))
	for n := range contents {
		names = append(names, n)
	}
	sort.Strings(names)
	files := make([]file, 0, len(names))
	for _, n := range names {
		files = append(files, newFile(n, contents[n]))
	}
	return files, contents, nil
}

// dockerPURL is pkg:docker/<repository>@<tag>, with the registry as the
// repository_url qualifier when it is not Docker Hub.
func dockerPURL(tag name.Tag) string {
	segs := strings.Split(tag.Context().RepositoryStr(), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	out := "pkg:docker/" + strings.Join(segs, "/") + "@" + url.PathEscape(tag.TagStr())
	if reg := tag.Context().RegistryStr(); reg != name.DefaultRegistry {
		out += "?repository_url=" + url.QueryEscape(reg+"/"+tag.Context().RepositoryStr())
	}
	return out
}
