package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// namespaceBase prefixes every documentNamespace; the rest is the document's
// name and the SHA-256 of what it describes, so one input always gets one
// namespace and two different inputs never share one.
const namespaceBase = "https://github.com/kubemetrics/metrics-server/spdx/"

// documentComment says once what every document's annotations mean.
const documentComment = "Packages come from the Go build info embedded in the binary (debug/buildinfo: " +
	"what `go version -m` prints): the main module, every module linked in, and the standard library. " +
	"A module's go.sum hash is an annotation \"go.sum: <module> <version> h1:<base64>\", not a checksum: " +
	"h1 is the Go checksum database's directory hash (SHA-256 over the sorted list of the SHA-256 of every file " +
	"in the module zip), not the digest of any one file, and SPDX 2.3 has no algorithm for it; " +
	"`go mod download -json <module>@<version>` or sum.golang.org check it. " +
	"A replaced module keeps its required path as its name and takes the replacement's version, sum and purl; " +
	"an annotation \"go.mod replace: <path> <version> => <path> <version>\" records the replacement. " +
	"Build settings (-trimpath, CGO_ENABLED, GOOS, GOARCH, vcs.*) are annotations \"go build setting: k=v\" on the main module. " +
	"Licenses were not analyzed (NOASSERTION)."

// options are what both documents are made from besides their subject.
type options struct {
	// Version fills the main module's version when the build info has none.
	Version string
	// Created is the document's creation time: the commit's time, so that
	// one commit always gives the same bytes.
	Created time.Time
}

func (o options) created() string { return o.Created.UTC().Format(time.RFC3339) }

func newDocument(name, subjectSHA256 string, o options) document {
	return document{
		SPDXVersion:       spdxVersion,
		DataLicense:       dataLicense,
		SPDXID:            documentID,
		Name:              name,
		DocumentNamespace: namespaceBase + strings.Trim(idUnsafe.ReplaceAllString(name, "-"), "-") + "-" + subjectSHA256,
		CreationInfo: creationInfo{
			Created:  o.created(),
			Creators: []string{creator},
			Comment:  "created is the source commit's time (SOURCE_DATE_EPOCH), so the same inputs give the same document",
		},
		Comment: documentComment,
	}
}

// binaryDocument describes a Go binary: the binary as a file generated from
// its main module, which depends on every linked module and the standard
// library.
func binaryDocument(fileName string, data []byte, o options) (document, error) {
	bf, gp, err := describeBinary(fileName, data, o)
	if err != nil {
		return document{}, err
	}
	doc := newDocument(path.Base(fileName)+"-"+gp.main.VersionInfo, sha256Hex(data), o)
	doc.DocumentDescribes = []string{gp.main.SPDXID}
	doc.Packages = append([]pkg{gp.main}, gp.deps...)
	doc.Files = []file{bf}
	doc.Relationships = append([]relationship{{documentID, "DESCRIBES", gp.main.SPDXID}}, goRelationships(bf, gp)...)
	return doc, nil
}

// describeBinary reads a Go binary's build info into its file and packages.
func describeBinary(fileName string, data []byte, o options) (file, goPackages, error) {
	bi, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return file{}, goPackages{}, fmt.Errorf("read the Go build info of %s: %w", fileName, err)
	}
	gp, err := packagesOf(bi, o.Version, o.created())
	if err != nil {
		return file{}, goPackages{}, fmt.Errorf("%s: %w", fileName, err)
	}
	f := newFile(fileName, data)
	f.Comment = "A Go binary built by " + bi.GoVersion + " from " + bi.Path + "."
	return f, gp, nil
}

func goRelationships(bin file, gp goPackages) []relationship {
	rels := []relationship{{bin.SPDXID, "GENERATED_FROM", gp.main.SPDXID}}
	for _, d := range gp.deps {
		rels = append(rels, relationship{gp.main.SPDXID, "DEPENDS_ON", d.SPDXID})
	}
	return rels
}

// newFile is a file entry; name is its path in what holds it, written as
// SPDX wants ("./" and relative).
func newFile(name string, data []byte) file {
	name = "./" + strings.TrimLeft(path.Clean("/"+name), "/")
	return file{
		SPDXID:           spdxID("File", strings.TrimPrefix(name, "./")),
		FileName:         name,
		FileTypes:        fileTypes(data),
		Checksums:        fileChecksums(data),
		LicenseConcluded: noAssertion,
		CopyrightText:    noAssertion,
	}
}

func fileTypes(data []byte) []string {
	switch {
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		return []string{"BINARY", "APPLICATION"}
	case utf8.Valid(data) && !bytes.ContainsRune(data, 0):
		return []string{"TEXT"}
	default:
		return []string{"OTHER"}
	}
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// encode writes doc as indented JSON ending in a newline, with '<', '>'
// and '&' as themselves.
func encode(doc document) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode the SPDX document: %w", err)
	}
	return buf.Bytes(), nil
}
