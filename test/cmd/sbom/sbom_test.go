package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1" //nolint:gosec // SPDX's verification code
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubemetrics/metrics-server/test/ociimage"
)

const (
	testEpoch   = 1764960000 // 2025-12-05T18:40:00Z
	testVersion = "v9.8.7-test+abc"
)

// binaries are the Go binaries the tests describe, built once per run.
var binaries = []struct {
	name string
	dir  string // relative to the test module
	pkg  string
	env  []string
	args []string
}{
	{
		// Our server as `make build` builds it: -trimpath, no cgo, no VCS
		// stamping (GOFLAGS here sets -buildvcs=false), so "(devel)".
		name: "metrics-server as make build",
		dir:  "..",
		pkg:  "./cmd/metrics-server",
		env:  []string{"CGO_ENABLED=0"},
		args: []string{"-trimpath", "-buildvcs=false", "-ldflags", "-s -w"},
	},
	{
		// A module replaced in go.mod, VCS stamping on, cgo on.
		name: "replacement and vcs stamping",
		dir:  ".",
		pkg:  "./cmd/sbom/testdata/replaced",
		env:  []string{"CGO_ENABLED=1"},
		args: []string{"-buildvcs=true"},
	},
	{
		// Static and small: what TestImageDocument puts in its images (our
		// server's 80 MB take minutes to gzip and read under -race).
		name: "static, for the image",
		dir:  ".",
		pkg:  "./cmd/sbom/testdata/replaced",
		env:  []string{"CGO_ENABLED=0"},
		args: []string{"-trimpath", "-buildvcs=false"},
	},
}

// imageBinary is the index in binaries of the one the image tests use.
const imageBinary = 2

// buildBinary builds one of binaries into dir and returns its path.
func buildBinary(t *testing.T, i int, dir string) string {
	t.Helper()
	b := binaries[i]
	out := filepath.Join(dir, fmt.Sprintf("bin%d", i))
	args := append([]string{"build", "-o", out}, b.args...)
	cmd := exec.Command("go", append(args, b.pkg)...)
	cmd.Dir = filepath.Join("..", "..", b.dir)
	cmd.Env = append(os.Environ(), b.env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, msg)
	}
	return out
}

// runTool runs the command as make does and returns what it wrote.
func runTool(t *testing.T, out string, args ...string) []byte {
	t.Helper()
	args = append(args, "-out", out, "-version", testVersion, "-source-date-epoch", strconv.Itoa(testEpoch))
	if err := run(args); err != nil {
		t.Fatalf("sbom %s: %v", strings.Join(args, " "), err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// modLine is one line of `go version -m`, or the same read from a document.
type modLine struct {
	Name, Version, Sum, Replace string
}

// goVersionM runs the real `go version -m` on bin: the reference the
// documents are held against. It returns the Go version, the main module,
// the dependencies and the build settings.
func goVersionM(t *testing.T, bin string) (goVersion string, main modLine, deps []modLine, settings []string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	for i, line := range strings.Split(string(out), "\n") {
		if i == 0 {
			_, goVersion, _ = strings.Cut(line, ": ")
			continue
		}
		f := strings.Split(strings.TrimPrefix(line, "\t"), "\t")
		for len(f) < 4 {
			f = append(f, "")
		}
		switch f[0] {
		case "mod":
			main = modLine{Name: f[1], Version: f[2], Sum: f[3]}
		case "dep":
			deps = append(deps, modLine{Name: f[1], Version: f[2], Sum: f[3]})
		case "=>":
			last := &deps[len(deps)-1]
			// The package takes what was compiled: the replacement's version and sum.
			last.Replace = strings.TrimSpace(last.Name + " " + last.Version + " => " + f[1] + " " + f[2])
			last.Version, last.Sum = f[2], f[3]
		case "build":
			settings = append(settings, f[1])
		}
	}
	if goVersion == "" || main.Name == "" {
		t.Fatalf("go version -m %s printed no Go version or main module:\n%s", bin, out)
	}
	return goVersion, main, deps, settings
}

// The parts of a document the tests read, decoded without the tool's types.
type testDoc struct {
	SPDXVersion, DataLicense, SPDXID, Name, DocumentNamespace string
	CreationInfo                                              struct {
		Created  string
		Creators []string
	}
	DocumentDescribes []string
	Packages          []struct {
		SPDXID, Name, VersionInfo, DownloadLocation, PrimaryPackagePurpose string
		FilesAnalyzed                                                      *bool
		PackageVerificationCode                                            *struct{ PackageVerificationCodeValue string }
		HasFiles                                                           []string
		ExternalRefs                                                       []struct{ ReferenceCategory, ReferenceType, ReferenceLocator string }
		Annotations                                                        []struct{ Annotator, AnnotationDate, AnnotationType, Comment string }
		Checksums                                                          []struct{ Algorithm, ChecksumValue string }
	}
	Files []struct {
		SPDXID, FileName string
		Checksums        []struct{ Algorithm, ChecksumValue string }
	}
	Relationships []struct{ SpdxElementID, RelationshipType, RelatedSpdxElement string }
}

func decode(t *testing.T, b []byte) testDoc {
	t.Helper()
	var d testDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	return d
}

var spdxIDPattern = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

// checkSPDX holds a document to the fields SPDX 2.3 requires (clauses 6,
// 7, 8, 11): document creation info, package and file identity, SHA1 on
// every file, a verification code where files were analyzed, and
// relationships between elements that exist.
func checkSPDX(t *testing.T, raw []byte) {
	t.Helper()
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	for _, k := range []string{"spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo", "packages", "relationships"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("no %q", k)
		}
	}
	d := decode(t, raw)
	if d.SPDXVersion != "SPDX-2.3" || d.DataLicense != "CC0-1.0" || d.SPDXID != "SPDXRef-DOCUMENT" || d.Name == "" {
		t.Errorf("spdxVersion %q dataLicense %q SPDXID %q name %q: want SPDX-2.3, CC0-1.0, SPDXRef-DOCUMENT and a name", d.SPDXVersion, d.DataLicense, d.SPDXID, d.Name)
	}
	if u, err := url.Parse(d.DocumentNamespace); err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(d.DocumentNamespace, "#") {
		t.Errorf("documentNamespace %q: want an absolute URI without '#'", d.DocumentNamespace)
	}
	if want := time.Unix(testEpoch, 0).UTC().Format("2006-01-02T15:04:05Z"); d.CreationInfo.Created != want {
		t.Errorf("created %q, want %q (the source date epoch)", d.CreationInfo.Created, want)
	}
	if len(d.CreationInfo.Creators) == 0 {
		t.Error("no creators")
	}
	for _, c := range d.CreationInfo.Creators {
		if !strings.HasPrefix(c, "Tool: ") && !strings.HasPrefix(c, "Organization: ") && !strings.HasPrefix(c, "Person: ") {
			t.Errorf("creator %q: want Tool:, Organization: or Person:", c)
		}
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	addID := func(id string) {
		if !spdxIDPattern.MatchString(id) {
			t.Errorf("SPDXID %q is not SPDXRef-[A-Za-z0-9.-]+", id)
		}
		if ids[id] {
			t.Errorf("SPDXID %q twice", id)
		}
		ids[id] = true
	}
	fileSHA1 := map[string]string{}
	for _, f := range d.Files {
		addID(f.SPDXID)
		if !strings.HasPrefix(f.FileName, "./") {
			t.Errorf("file %q: want a relative name starting ./", f.FileName)
		}
		for _, c := range f.Checksums {
			if c.Algorithm == "SHA1" {
				fileSHA1[f.SPDXID] = c.ChecksumValue
			}
		}
		if fileSHA1[f.SPDXID] == "" {
			t.Errorf("file %s has no SHA1 (clause 8.4 requires one)", f.FileName)
		}
	}
	for _, p := range d.Packages {
		addID(p.SPDXID)
		if p.Name == "" || p.DownloadLocation == "" || p.FilesAnalyzed == nil {
			t.Errorf("package %s: name %q, downloadLocation %q, filesAnalyzed %v: all required", p.SPDXID, p.Name, p.DownloadLocation, p.FilesAnalyzed)
			continue
		}
		if !*p.FilesAnalyzed && len(p.HasFiles) > 0 {
			t.Errorf("package %s has files but filesAnalyzed false", p.Name)
		}
		if *p.FilesAnalyzed {
			var sums []string
			for _, f := range p.HasFiles {
				sums = append(sums, fileSHA1[f])
			}
			sort.Strings(sums)
			s := sha1Hex([]byte(strings.Join(sums, "")))
			if p.PackageVerificationCode == nil || p.PackageVerificationCode.PackageVerificationCodeValue != s {
				t.Errorf("package %s: verification code %+v, want %s", p.Name, p.PackageVerificationCode, s)
			}
		}
	}
	describes := false
	for _, r := range d.Relationships {
		if !ids[r.SpdxElementID] || !ids[r.RelatedSpdxElement] {
			t.Errorf("relationship %s %s %s names an element the document lacks", r.SpdxElementID, r.RelationshipType, r.RelatedSpdxElement)
		}
		if r.SpdxElementID == "SPDXRef-DOCUMENT" && r.RelationshipType == "DESCRIBES" {
			describes = true
			if diff := cmp.Diff([]string{r.RelatedSpdxElement}, d.DocumentDescribes); diff != "" {
				t.Errorf("documentDescribes differs from the DESCRIBES relationship:\n%s", diff)
			}
		}
	}
	if !describes {
		t.Error("no DESCRIBES relationship")
	}
}

// goModulesOf reads back the Go packages of a document as `go version -m`
// would list them: the main module, the dependencies, the Go version (the
// stdlib package) and the main module's build settings.
func goModulesOf(t *testing.T, d testDoc) (goVersion string, main modLine, deps []modLine, settings []string) {
	t.Helper()
	for _, p := range d.Packages {
		var m modLine
		m.Name, m.Version = p.Name, p.VersionInfo
		for _, a := range p.Annotations {
			if s, ok := strings.CutPrefix(a.Comment, "go.sum: "); ok {
				f := strings.Fields(s)
				m.Sum = f[len(f)-1]
			}
			if s, ok := strings.CutPrefix(a.Comment, "go.mod replace: "); ok {
				m.Replace = s
			}
			if s, ok := strings.CutPrefix(a.Comment, "go build setting: "); ok {
				settings = append(settings, s)
			}
		}
		switch {
		case p.PrimaryPackagePurpose == "APPLICATION":
			main = m
		case p.Name == "stdlib":
			goVersion = p.VersionInfo
		case p.PrimaryPackagePurpose == "CONTAINER":
		default:
			deps = append(deps, m)
		}
	}
	return goVersion, main, deps, settings
}

// TestBinaryDocument describes each binary and holds the document to `go
// version -m`, to SPDX 2.3, and to itself on a second run.
func TestBinaryDocument(t *testing.T) {
	dir := t.TempDir()
	for i, b := range binaries {
		t.Run(b.name, func(t *testing.T) {
			bin := buildBinary(t, i, dir)
			out := filepath.Join(dir, fmt.Sprintf("bin%d.spdx.json", i))
			first := runTool(t, out, "-binary", bin)
			second := runTool(t, out, "-binary", bin)
			t.Run("valid SPDX 2.3", func(t *testing.T) { checkSPDX(t, first) })
			t.Run("byte-identical runs", func(t *testing.T) {
				if !bytes.Equal(first, second) {
					t.Errorf("two runs differ:\n%s", cmp.Diff(string(first), string(second)))
				}
			})
			d := decode(t, first)
			t.Run("packages equal go version -m", func(t *testing.T) {
				checkAgainstGoVersionM(t, bin, d)
			})
			t.Run("every package has a purl", func(t *testing.T) { checkPURLs(t, d) })
			t.Run("the binary's checksum", func(t *testing.T) {
				data, err := os.ReadFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				if len(d.Files) != 1 {
					t.Fatalf("%d files, want the binary alone", len(d.Files))
				}
				if got, want := checksumOf(d.Files[0].Checksums, "SHA256"), sha256Hex(data); got != want {
					t.Errorf("binary SHA256 %s, want %s", got, want)
				}
			})
		})
	}
}

func checkAgainstGoVersionM(t *testing.T, bin string, d testDoc) {
	t.Helper()
	wantGo, wantMain, wantDeps, wantSettings := goVersionM(t, bin)
	gotGo, gotMain, gotDeps, gotSettings := goModulesOf(t, d)
	if wantMain.Version == "(devel)" {
		wantMain.Version = testVersion // what -version fills in
	}
	if gotGo != wantGo {
		t.Errorf("stdlib %q, go version -m %q", gotGo, wantGo)
	}
	if diff := cmp.Diff(wantMain, gotMain); diff != "" {
		t.Errorf("main module (-go version -m +document):\n%s", diff)
	}
	if len(wantDeps) == 0 {
		t.Fatal("go version -m lists no dependencies: the test proves nothing")
	}
	if diff := cmp.Diff(wantDeps, gotDeps); diff != "" {
		t.Errorf("dependencies (-go version -m +document):\n%s", diff)
	}
	if diff := cmp.Diff(wantSettings, gotSettings); diff != "" {
		t.Errorf("build settings (-go version -m +document):\n%s", diff)
	}
}

// checkPURLs wants one purl per package; a Go module's names the module
// and version that were compiled in.
func checkPURLs(t *testing.T, d testDoc) {
	t.Helper()
	for _, p := range d.Packages {
		var purls []string
		for _, r := range p.ExternalRefs {
			if r.ReferenceCategory == "PACKAGE-MANAGER" && r.ReferenceType == "purl" {
				purls = append(purls, r.ReferenceLocator)
			}
		}
		if len(purls) != 1 {
			t.Errorf("package %s %s: purls %q, want one", p.Name, p.VersionInfo, purls)
			continue
		}
		rest, ok := strings.CutPrefix(purls[0], "pkg:golang/")
		if !ok {
			if p.PrimaryPackagePurpose != "CONTAINER" || !strings.HasPrefix(purls[0], "pkg:docker/") {
				t.Errorf("package %s: purl %q, want pkg:golang/ (or pkg:docker/ for the image)", p.Name, purls[0])
			}
			continue
		}
		path, version, _ := strings.Cut(rest, "@")
		version, err := url.PathUnescape(version)
		if err != nil {
			t.Errorf("package %s: purl %q: %v", p.Name, purls[0], err)
		}
		wantVersion := p.VersionInfo
		if p.Name == "stdlib" {
			wantVersion = strings.TrimPrefix(p.VersionInfo, "go")
		}
		if version != wantVersion || path == "" {
			t.Errorf("package %s %s: purl %q names %s@%s", p.Name, p.VersionInfo, purls[0], path, version)
		}
		if p.Name != "stdlib" && path != p.Name && !hasReplace(p.Annotations) {
			t.Errorf("package %s: purl %q names another module without a replacement", p.Name, purls[0])
		}
	}
}

func hasReplace(as []struct{ Annotator, AnnotationDate, AnnotationType, Comment string }) bool {
	for _, a := range as {
		if strings.HasPrefix(a.Comment, "go.mod replace: ") {
			return true
		}
	}
	return false
}

// TestImageDocument builds an image as `make image` does, around a small
// static Go binary, and describes the tarball: its binary's checksum must be the SHA-256 of
// the file inside the tarball, read here with archive/tar alone; the
// config and layer digests those of the tarball's blobs; the packages
// those of the binary.
func TestImageDocument(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, imageBinary, dir)
	for _, tc := range []struct {
		name, ref, wantPURL string
	}{
		{"Docker Hub name", "kubemetrics/metrics-server:v9.8.7-test", "pkg:docker/kubemetrics/metrics-server@v9.8.7-test"},
		{"own registry", "registry.example:5000/team/metrics-server:v1", "pkg:docker/team/metrics-server@v1?repository_url=registry.example%3A5000%2Fteam%2Fmetrics-server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ociimage.Build(ociimage.Options{Binary: bin, Version: testVersion, Revision: "test", Created: time.Unix(testEpoch, 0)})
			if err != nil {
				t.Fatal(err)
			}
			tarPath := filepath.Join(dir, "image.tar")
			if err := ociimage.WriteFile(tarPath, tc.ref, img); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "image.spdx.json")
			first := runTool(t, out, "-image", tarPath)
			second := runTool(t, out, "-image", tarPath)
			t.Run("valid SPDX 2.3", func(t *testing.T) { checkSPDX(t, first) })
			t.Run("byte-identical runs", func(t *testing.T) {
				if !bytes.Equal(first, second) {
					t.Errorf("two runs differ:\n%s", cmp.Diff(string(first), string(second)))
				}
			})
			d := decode(t, first)
			t.Run("every package has a purl", func(t *testing.T) { checkPURLs(t, d) })

			blobs := readDockerSave(t, tarPath)
			t.Run("binary checksum is the file's in the tarball", func(t *testing.T) {
				inTar, ok := blobs.files[strings.TrimPrefix(ociimage.BinaryPath, "/")]
				if !ok {
					t.Fatalf("no %s in the tarball's layers", ociimage.BinaryPath)
				}
				onDisk, err := os.ReadFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				if sha256Hex(inTar) != sha256Hex(onDisk) {
					t.Fatalf("the image's binary differs from the one built: the test's premise fails")
				}
				var got string
				for _, f := range d.Files {
					if f.FileName == "."+ociimage.BinaryPath {
						got = checksumOf(f.Checksums, "SHA256")
					}
				}
				if got != sha256Hex(inTar) {
					t.Errorf("document's SHA256 of %s %q, the tarball's file %s", ociimage.BinaryPath, got, sha256Hex(inTar))
				}
				if len(d.Files) != len(blobs.files) {
					t.Errorf("%d files in the document, %d regular files in the layers", len(d.Files), len(blobs.files))
				}
			})
			t.Run("image package", func(t *testing.T) {
				image := d.Packages[0]
				if image.PrimaryPackagePurpose != "CONTAINER" {
					t.Fatalf("first package %s is not the image", image.Name)
				}
				var comments []string
				for _, a := range image.Annotations {
					comments = append(comments, a.Comment)
				}
				want := []string{"image config digest (image id): sha256:" + blobs.configSHA256}
				for i, l := range blobs.layers {
					want = append(want, fmt.Sprintf("image layer %d/%d: digest sha256:%s, diff id sha256:%s", i+1, len(blobs.layers), l[0], l[1]))
				}
				if diff := cmp.Diff(want, comments); diff != "" {
					t.Errorf("image annotations (-from the tarball +document):\n%s", diff)
				}
				if got := image.ExternalRefs[0].ReferenceLocator; got != tc.wantPURL {
					t.Errorf("purl %q, want %q", got, tc.wantPURL)
				}
				tarData, err := os.ReadFile(tarPath)
				if err != nil {
					t.Fatal(err)
				}
				if got := checksumOf(image.Checksums, "SHA256"); got != sha256Hex(tarData) {
					t.Errorf("image checksum %s, want the tarball's %s", got, sha256Hex(tarData))
				}
			})
			t.Run("packages equal go version -m of the binary", func(t *testing.T) {
				checkAgainstGoVersionM(t, bin, d)
			})
		})
	}
}

// dockerSave is what readDockerSave finds: the config blob's SHA-256, each
// layer's blob and uncompressed SHA-256, and the layers' regular files.
type dockerSave struct {
	configSHA256 string
	layers       [][2]string
	files        map[string][]byte
}

// readDockerSave reads a `docker save` tarball with archive/tar and gzip
// only: manifest.json names the config and the layers.
func readDockerSave(t *testing.T, path string) dockerSave {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = b
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v (%d images)", err, len(manifest))
	}
	out := dockerSave{configSHA256: sha256Hex(entries[manifest[0].Config]), files: map[string][]byte{}}
	for _, l := range manifest[0].Layers {
		blob := entries[l]
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatalf("layer %s: %v", l, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("layer %s: %v", l, err)
		}
		out.layers = append(out.layers, [2]string{sha256Hex(blob), sha256Hex(raw)})
		lr := tar.NewReader(bytes.NewReader(raw))
		for {
			h, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l, err)
			}
			if h.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(lr)
				if err != nil {
					t.Fatal(err)
				}
				out.files[strings.TrimPrefix(h.Name, "/")] = b
			}
		}
	}
	return out
}

func checksumOf(cs []struct{ Algorithm, ChecksumValue string }, alg string) string {
	for _, c := range cs {
		if c.Algorithm == alg {
			return c.ChecksumValue
		}
	}
	return ""
}

// TestFlags: the command refuses what it cannot make reproducible or
// cannot tell apart.
func TestFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.json")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"neither input", []string{"-out", out, "-source-date-epoch", "1"}, "one of -binary and -image"},
		{"both inputs", []string{"-binary", "a", "-image", "b", "-out", out, "-source-date-epoch", "1"}, "one of -binary and -image"},
		{"no out", []string{"-binary", "a", "-source-date-epoch", "1"}, "-out is required"},
		{"no epoch", []string{"-binary", "a", "-out", out, "-source-date-epoch", ""}, "source date epoch"},
		{"not a binary", []string{"-binary", "sbom_test.go", "-out", out, "-source-date-epoch", "1"}, "build info of sbom_test.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func sha1Hex(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec // the algorithm SPDX defines
	return hex.EncodeToString(s[:])
}
