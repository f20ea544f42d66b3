package main

import (
	"crypto/sha1" //nolint:gosec // SPDX 2.3 requires a SHA1 for every file and the verification code; SHA256 sits beside it.
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"sort"
	"strings"
)

// The SPDX 2.3 JSON document, the fields we fill (spdx-spec v2.3, clauses
// 6 document creation, 7 package, 8 file, 11 relationship, 12 annotation).
// Field order is the struct order, so the output is stable.
type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Comment           string         `json:"comment,omitempty"`
	DocumentDescribes []string       `json:"documentDescribes"`
	Packages          []pkg          `json:"packages"`
	Files             []file         `json:"files,omitempty"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
	Comment  string   `json:"comment,omitempty"`
}

type pkg struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	PackageFileName       string            `json:"packageFileName,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	VerificationCode      *verificationCode `json:"packageVerificationCode,omitempty"`
	Checksums             []checksum        `json:"checksums,omitempty"`
	SourceInfo            string            `json:"sourceInfo,omitempty"`
	LicenseConcluded      string            `json:"licenseConcluded"`
	LicenseDeclared       string            `json:"licenseDeclared"`
	CopyrightText         string            `json:"copyrightText"`
	Comment               string            `json:"comment,omitempty"`
	ExternalRefs          []externalRef     `json:"externalRefs"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Annotations           []annotation      `json:"annotations,omitempty"`
	HasFiles              []string          `json:"hasFiles,omitempty"`
}

type verificationCode struct {
	Value string `json:"packageVerificationCodeValue"`
}

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type externalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type annotation struct {
	Annotator string `json:"annotator"`
	Date      string `json:"annotationDate"`
	Type      string `json:"annotationType"`
	Comment   string `json:"comment"`
}

type file struct {
	SPDXID           string     `json:"SPDXID"`
	FileName         string     `json:"fileName"`
	FileTypes        []string   `json:"fileTypes,omitempty"`
	Checksums        []checksum `json:"checksums"`
	LicenseConcluded string     `json:"licenseConcluded"`
	CopyrightText    string     `json:"copyrightText"`
	Comment          string     `json:"comment,omitempty"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const (
	spdxVersion = "SPDX-2.3"
	dataLicense = "CC0-1.0"
	documentID  = "SPDXRef-DOCUMENT"
	noAssertion = "NOASSERTION"
	toolName    = "kubemetrics-sbom"
	// creator is the tool, as clause 6.8 wants ("Tool: name-version"); it
	// has no version of its own beyond the commit it is built from.
	creator = "Tool: " + toolName
	// annotator marks the annotations this tool writes (clause 12.1).
	annotator = creator
)

// idUnsafe is every character an SPDX identifier may not hold (clause 3.2:
// letters, digits, '.' and '-').
var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxID makes an identifier for kind and name that stays the same for the
// same input; the hash keeps a/b-c and a-b/c apart.
func spdxID(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + name))
	return "SPDXRef-" + kind + "-" + strings.Trim(idUnsafe.ReplaceAllString(name, "-"), "-") + "-" + hex.EncodeToString(sum[:4])
}

// fileChecksums are the SHA1 clause 8.4 requires and the SHA256 people check.
func fileChecksums(data []byte) []checksum {
	s1 := sha1.Sum(data) //nolint:gosec // required by SPDX, not used for security
	s256 := sha256.Sum256(data)
	return []checksum{
		{Algorithm: "SHA1", Value: hex.EncodeToString(s1[:])},
		{Algorithm: "SHA256", Value: hex.EncodeToString(s256[:])},
	}
}

// verificationCodeOf computes clause 7.9's package verification code: the
// SHA1 of the files' SHA1s, sorted, concatenated.
func verificationCodeOf(files []file) *verificationCode {
	var sums []string
	for _, f := range files {
		for _, c := range f.Checksums {
			if c.Algorithm == "SHA1" {
				sums = append(sums, c.Value)
			}
		}
	}
	sort.Strings(sums)
	s := sha1.Sum([]byte(strings.Join(sums, ""))) //nolint:gosec // the algorithm SPDX defines
	return &verificationCode{Value: hex.EncodeToString(s[:])}
}
