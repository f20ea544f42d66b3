// Package pemcerts reads the certificates of a PEM bundle (a CA file, a
// caBundle, a Secret's tls.crt), bounded in the blocks it reads, saying
// what in the bundle is not a certificate. It knows nothing about what
// the certificates are for.
package pemcerts

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxBlocks bounds the PEM blocks read from one bundle; a bundle with
// more is read up to it, and the error says so.
const MaxBlocks = 1000

// ErrNoCertificate is wrapped by Parse's error when the bundle holds no
// certificate at all.
var ErrNoCertificate = errors.New("no PEM certificate")

// Parse returns the certificates of the PEM bundle data, in order, and
// an error when the bundle holds none (wrapping ErrNoCertificate), when a
// CERTIFICATE block does not parse, or when it has more than MaxBlocks
// blocks. The certificates that parse are returned even with an error.
// Blocks of other types (a key beside the certificate) are skipped; the
// no-certificate error names them.
func Parse(data []byte) ([]*x509.Certificate, error) {
	var (
		certs   []*x509.Certificate
		bad     []string
		skipped []string
	)
	rest := data
	for i := 0; ; i++ {
		if i == MaxBlocks {
			if block, _ := pem.Decode(rest); block != nil {
				bad = append(bad, fmt.Sprintf("more than %d PEM blocks; the rest were not read", MaxBlocks))
			}
			break
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			skipped = append(skipped, "a "+block.Type+" block")
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			bad = append(bad, fmt.Sprintf("certificate %d: %v", len(certs)+len(bad)+1, err))
			continue
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 && len(bad) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("%w (found %s)", ErrNoCertificate, strings.Join(skipped, ", "))
		}
		return nil, ErrNoCertificate
	}
	if len(bad) > 0 {
		return certs, errors.New(strings.Join(bad, "; "))
	}
	return certs, nil
}
