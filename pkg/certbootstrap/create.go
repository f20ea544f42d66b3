package certbootstrap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// created is a new key and its certificate, each also in PEM.
type created struct {
	key     crypto.Signer
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

// create makes a P-256 key and the certificate of tmpl for it, signed by
// parent with parentKey, or by itself when parent is nil; what names the
// certificate in errors ("CA", "serving").
func create(what string, tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*created, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the %s key: %w", what, err)
	}
	signing := "signing the " + what + " certificate"
	if parent == nil {
		parent, parentKey, signing = tmpl, key, "self-signing the "+what
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", signing, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kpem, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return &created{key: key, cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), keyPEM: kpem}, nil
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding a key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		// crypto/rand does not fail on Linux; a time-based serial is
		// still unique enough for one CA.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
