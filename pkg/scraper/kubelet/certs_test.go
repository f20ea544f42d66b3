package kubelet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSignedDER makes a CA certificate that signed nothing we serve.
func selfSignedDER(t testing.TB) []byte {
	der, _ := selfSigned(t)
	return der
}

// selfSigned makes a self-signed ECDSA P-256 certificate (what a kubelet's
// rotated serving certificate uses) that can serve the given addresses,
// valid from an hour ago to an hour from now, and its key.
func selfSigned(t testing.TB, ips ...net.IP) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	return selfSignedFor(t, "self-signed", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), ips...)
}

// selfSignedFor makes a self-signed ECDSA P-256 CA certificate named cn
// that can serve ips, valid from notBefore to notAfter, and its key.
func selfSignedFor(t testing.TB, cn string, notBefore, notAfter time.Time, ips ...net.IP) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}
