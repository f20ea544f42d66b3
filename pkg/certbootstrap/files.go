package certbootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The files written into the certificate directory. The serving
// certificate and its key share one file, so that one rename replaces both:
// with two files, a reader between the renames would find a certificate
// and a key that do not match (k8s.io/apiserver logs that, and keeps the
// old pair until the second rename). The CA key is never written to disk.
const (
	// FileServing holds tls.crt followed by tls.key.
	FileServing = "tls.pem"
	// FileCA is ca.crt.
	FileCA = KeyCA
)

// errWrite is the error of a file that cannot be written.
var errWrite = errors.New("cannot write the serving certificate")

// writeFiles writes the bundle's CA and its serving certificate with its key
// into dir, each only when its content differs from the file's, by writing a
// temporary file beside it and renaming it over the old one, so a reader
// (k8s.io/apiserver's file watch) sees the old content or the new, never a
// part. It reports whether any file changed.
func writeFiles(dir string, b *bundle) (changed bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("%w: creating the certificate directory %s (--cert-dir): %w", errWrite, dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{FileCA, b.caPEM, 0o644},
		{FileServing, servingPEM(b), 0o600},
	} {
		path := filepath.Join(dir, f.name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if err := replaceFile(path, f.data, f.mode); err != nil {
			return changed, fmt.Errorf("%w: %s (--cert-dir must be writable): %w", errWrite, path, err)
		}
		changed = true
	}
	return changed, nil
}

// replaceFile writes data into a new file beside path and renames it over
// path.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// servingPEM is the content of FileServing.
func servingPEM(b *bundle) []byte {
	return append(append([]byte{}, b.certPEM...), b.keyPEM...)
}
