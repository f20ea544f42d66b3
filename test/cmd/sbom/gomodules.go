package main

import (
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"unicode"
)

// goPackages are the SPDX packages of one Go binary's build info: its main
// module first, then every module it links in the build info's order
// (sorted by path), then the standard library.
type goPackages struct {
	main pkg
	deps []pkg // modules, then stdlib
}

// packagesOf turns build info into packages. version fills the main
// module's version when the build info has none ("(devel)": a build from a
// checkout without VCS stamping); date stamps the annotations.
func packagesOf(bi *debug.BuildInfo, version, date string) (goPackages, error) {
	if bi.Main.Path == "" {
		return goPackages{}, fmt.Errorf("the build info names no main module (built with GO111MODULE=off?)")
	}
	note := func(text string) annotation {
		return annotation{Annotator: annotator, Date: date, Type: "OTHER", Comment: text}
	}

	mainVersion := bi.Main.Version
	var mainComment string
	if mainVersion == "" || mainVersion == "(devel)" {
		if version == "" {
			return goPackages{}, fmt.Errorf("the build info gives main module %s the version %q: pass -version", bi.Main.Path, bi.Main.Version)
		}
		mainComment = fmt.Sprintf("The build info gives this module the version %q; the version here is the one the build was stamped with (-version).", bi.Main.Version)
		mainVersion = version
	}
	main := goModule(bi.Main.Path, mainVersion, "")
	main.SPDXID = spdxID("Package-go-main", bi.Main.Path)
	main.DownloadLocation = noAssertion
	main.PrimaryPackagePurpose = "APPLICATION"
	main.Comment = strings.TrimSpace("Main module of the Go binary; main package " + bi.Path + ". " + mainComment)
	main.Annotations = append(main.Annotations, note("go version: "+bi.GoVersion))
	var vcs []string
	for _, s := range bi.Settings {
		main.Annotations = append(main.Annotations, note("go build setting: "+s.Key+"="+s.Value))
		if strings.HasPrefix(s.Key, "vcs") {
			vcs = append(vcs, s.Key+"="+s.Value)
		}
	}
	if len(vcs) > 0 {
		main.SourceInfo = "built from a checkout: " + strings.Join(vcs, ", ")
	}

	out := goPackages{main: main}
	for _, d := range bi.Deps {
		p, err := depPackage(d, note)
		if err != nil {
			return goPackages{}, err
		}
		out.deps = append(out.deps, p)
	}
	out.deps = append(out.deps, stdlib(bi.GoVersion))
	return out, nil
}

// depPackage is one linked module. With a replacement, the package keeps the
// required path as its name (what the code imports) and takes the
// replacement's version, sum and purl (what was compiled).
func depPackage(d *debug.Module, note func(string) annotation) (pkg, error) {
	if d.Path == "" {
		return pkg{}, fmt.Errorf("the build info lists a dependency without a path")
	}
	eff := d
	var comment string
	if d.Replace != nil {
		eff = d.Replace
		if eff.Version == "" {
			comment = fmt.Sprintf("go.mod replaces %s %s with the directory %s: no version, no sum.", d.Path, d.Version, eff.Path)
		} else {
			comment = fmt.Sprintf("go.mod replaces %s %s with %s %s.", d.Path, d.Version, eff.Path, eff.Version)
		}
	}
	p := goModule(eff.Path, eff.Version, eff.Sum)
	p.Name = d.Path
	p.SPDXID = spdxID("Package-go-module", d.Path)
	p.Comment = comment
	if d.Replace != nil {
		// As `go version -m` prints it: "<path> <version> => <path> <version>".
		p.Annotations = append(p.Annotations, note(strings.TrimSpace("go.mod replace: "+d.Path+" "+d.Version+" => "+eff.Path+" "+eff.Version)))
	}
	if eff.Sum != "" {
		// A go.sum line: "<module> <version> <h1 sum>".
		p.Annotations = append(p.Annotations, note("go.sum: "+eff.Path+" "+eff.Version+" "+eff.Sum))
	}
	return p, nil
}

// goModule is a module package without identifiers or annotations: its
// purl and its download location on the public module proxy.
func goModule(path, version, sum string) pkg {
	p := pkg{
		Name:             path,
		VersionInfo:      version,
		DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		ExternalRefs:     []externalRef{purlRef(goPURL(path, version))},
	}
	if version != "" && sum != "" {
		p.DownloadLocation = "https://proxy.golang.org/" + escapeModule(path) + "/@v/" + escapeModule(version) + ".zip"
	}
	return p
}

// stdlib is the Go standard library the binary was compiled with, named as
// vulnerability databases name it (OSV's "stdlib" in the Go ecosystem).
func stdlib(goVersion string) pkg {
	v := strings.TrimPrefix(strings.Fields(goVersion + " ")[0], "go")
	p := pkg{
		SPDXID:           spdxID("Package-go", "stdlib"),
		Name:             "stdlib",
		VersionInfo:      goVersion,
		DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		Comment:          "The Go standard library and runtime, compiled into the binary by the toolchain " + goVersion + ".",
		ExternalRefs:     []externalRef{purlRef(goPURL("stdlib", v))},
	}
	if v != "" && strings.HasPrefix(goVersion, "go") {
		p.DownloadLocation = "https://go.dev/dl/go" + v + ".src.tar.gz"
	}
	return p
}

func purlRef(locator string) externalRef {
	return externalRef{Category: "PACKAGE-MANAGER", Type: "purl", Locator: locator}
}

// goPURL is pkg:golang/<module path>@<version>, each path segment and the
// version percent-encoded (a "+incompatible" version's '+' becomes %2B).
func goPURL(path, version string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	out := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" {
		out += "@" + strings.ReplaceAll(url.PathEscape(version), "+", "%2B")
	}
	return out
}

// escapeModule is the module proxy's case encoding: each upper-case letter
// becomes '!' and its lower case (golang.org/x/mod/module.EscapePath).
func escapeModule(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
