// Command sbom writes an SPDX 2.3 JSON software bill of materials (`make
// sbom`) for the metrics-server binary or for its image tarball, from the Go
// build info embedded in the binary: the main module, every linked module
// with its version and go.sum hash, replacements, the Go version and the
// build settings. It reads local files only (no network, no Docker engine),
// and the same inputs and -source-date-epoch give the same bytes.
//
// It knows nothing of Kubernetes or of how the binary or the image were
// built beyond what they carry: the image's entrypoint names the binary.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sbom:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sbom", flag.ContinueOnError)
	binary := fs.String("binary", "", "Go binary to describe")
	image := fs.String("image", "", "`docker save` image tarball to describe (one image, one tag; its entrypoint a Go binary)")
	out := fs.String("out", "", "file to write the SPDX JSON document to (required)")
	version := fs.String("version", "", "the main module's version where the build info says (devel) (the Makefile's VERSION)")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix seconds written as the document's creation time (default $SOURCE_DATE_EPOCH; required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*binary == "") == (*image == "") {
		return fmt.Errorf("give one of -binary and -image")
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil || secs <= 0 {
		return fmt.Errorf("source date epoch %q: want Unix seconds > 0 (-source-date-epoch or SOURCE_DATE_EPOCH)", *epoch)
	}
	o := options{Version: *version, Created: time.Unix(secs, 0)}

	var doc document
	if *binary != "" {
		data, err := readBounded(*binary)
		if err != nil {
			return err
		}
		doc, err = binaryDocument(filepath.Base(*binary), data, o)
		if err != nil {
			return err
		}
	} else if doc, err = imageDocument(*image, o); err != nil {
		return err
	}
	b, err := encode(doc)
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, b); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %s, %d packages, %d files\n", *out, doc.Name, len(doc.Packages), len(doc.Files))
	return nil
}

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("binary %s: %d bytes, over the bound of %d", path, st.Size(), maxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	return data, nil
}

// writeAtomic writes data beside path and renames it, so a reader sees the
// old document or the new one, never half of one.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename this finds nothing
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
