// Command imagebuild writes the metrics-server image as a `docker save`
// tarball from a static Linux binary, without a Docker engine (`make image`).
// Same inputs, same bytes: every timestamp is -source-date-epoch.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kubemetrics/metrics-server/test/ociimage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	binary := fs.String("binary", "_output/metrics-server", "static Linux binary to put at "+ociimage.BinaryPath)
	out := fs.String("out", "_output/metrics-server-image.tar", "tarball to write")
	ref := fs.String("image", "", "image reference, repository:tag (required)")
	version := fs.String("version", "", "value of the "+ociimage.VersionLabel+" label (required)")
	revision := fs.String("revision", "unknown", "value of the "+ociimage.RevisionLabel+" label")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix seconds stamped on the image and its files (default $SOURCE_DATE_EPOCH; required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" || *version == "" || *epoch == "" {
		return fmt.Errorf("-image, -version and -source-date-epoch (or SOURCE_DATE_EPOCH) are required")
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil || secs <= 0 {
		return fmt.Errorf("source date epoch %q: want Unix seconds > 0", *epoch)
	}
	img, err := ociimage.Build(ociimage.Options{
		Binary:   *binary,
		Version:  *version,
		Revision: *revision,
		Created:  time.Unix(secs, 0),
	})
	if err != nil {
		return err
	}
	if err := ociimage.WriteFile(*out, *ref, img); err != nil {
		return err
	}
	// The image ID (the config's digest) is what `docker images` and
	// `crictl images` show; a manifest digest would mislead, since a
	// docker-save tarball carries no manifest and each runtime writes its own.
	id, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("image id: %w", err)
	}
	fmt.Printf("wrote %s: %s, image id %s\n", *out, *ref, id)
	return nil
}
