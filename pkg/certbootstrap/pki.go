package certbootstrap

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/pemcerts"
)

// Lifetimes of what the bootstrap makes.
const (
	// CAValidity is the lifetime of a new CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// ServingValidity is the lifetime of a new serving certificate.
	ServingValidity = 365 * 24 * time.Hour
	// backdate is how far before now a new certificate becomes valid, so a
	// kube-apiserver whose clock is behind ours accepts it at once.
	backdate = time.Hour
)

// The keys of the Secret. tls.crt, tls.key and ca.crt are those of every
// kubernetes.io/tls Secret; ca.key is ours, so that the serving certificate
// can be renewed from the same CA.
const (
	KeyCert   = "tls.crt"
	KeyKey    = "tls.key"
	KeyCA     = "ca.crt"
	KeyCAKey  = "ca.key"
	pemCert   = "CERTIFICATE"
	pemPKCS8  = "PRIVATE KEY"
	caCNStart = "metrics-server-ca@"
)

// bundle is the content of the Secret: a CA and a serving certificate it
// signed, each with its key, kept in their PEM forms as stored.
type bundle struct {
	ca      *x509.Certificate
	caKey   crypto.Signer
	cert    *x509.Certificate
	caPEM   []byte // ca.crt: the signing CA first, then any older CA still trusted
	caKPEM  []byte
	certPEM []byte
	keyPEM  []byte
}

// data returns the bundle as the Secret's data.
func (b *bundle) data() map[string][]byte {
	return map[string][]byte{KeyCA: b.caPEM, KeyCAKey: b.caKPEM, KeyCert: b.certPEM, KeyKey: b.keyPEM}
}

// parseCA reads the CA half of a Secret's data: ca.crt (whose first
// certificate must be a CA) and ca.key (its key).
func parseCA(data map[string][]byte) (*bundle, error) {
	certs, err := parseCerts(data[KeyCA])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCA, err)
	}
	key, err := parseKey(data[KeyCAKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCAKey, err)
	}
	ca := certs[0]
	if !ca.IsCA {
		return nil, fmt.Errorf("%s: the first certificate (%s) is not a CA", KeyCA, ca.Subject)
	}
	if !publicKeyMatches(ca, key) {
		return nil, fmt.Errorf("%s is not the key of the CA in %s", KeyCAKey, KeyCA)
	}
	return &bundle{ca: ca, caKey: key, caPEM: data[KeyCA], caKPEM: data[KeyCAKey]}, nil
}

// parseBundle reads a whole Secret's data. Its errors name the key at fault.
func parseBundle(data map[string][]byte) (*bundle, error) {
	b, err := parseCA(data)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(data[KeyCert])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCert, err)
	}
	key, err := parseKey(data[KeyKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyKey, err)
	}
	if !publicKeyMatches(certs[0], key) {
		return nil, fmt.Errorf("%s is not the key of the certificate in %s", KeyKey, KeyCert)
	}
	b.cert, b.certPEM, b.keyPEM = certs[0], data[KeyCert], data[KeyKey]
	return b, nil
}

// renewReason says why the serving certificate must be replaced at now for
// a server named by dnsNames, or "" when it is fine: it must be signed by
// the CA, name every one of dnsNames and have at least a third of its
// lifetime left.
func (b *bundle) renewReason(now time.Time, dnsNames []string) string {
	if err := b.cert.CheckSignatureFrom(b.ca); err != nil {
		return "it is not signed by the CA in " + KeyCA
	}
	for _, n := range dnsNames {
		if !slices.Contains(b.cert.DNSNames, n) {
			return fmt.Sprintf("it does not name %s (its DNS names: %v)", n, b.cert.DNSNames)
		}
	}
	life := b.cert.NotAfter.Sub(b.cert.NotBefore)
	if left := b.cert.NotAfter.Sub(now); left < life/3 {
		return fmt.Sprintf("it expires at %s, less than a third of its lifetime of %v away", b.cert.NotAfter.UTC().Format(time.RFC3339), life)
	}
	return ""
}

// newBundle makes a CA and a serving certificate for dnsNames, both valid
// from now.
func newBundle(now time.Time, dnsNames []string) (*bundle, error) {
	ca, err := newCA(now, nil)
	if err != nil {
		return nil, err
	}
	return ca.issue(now, dnsNames)
}

// newCA makes a CA valid from now; the PEM of old (a CA still trusted,
// or nil) follows the new CA in ca.crt so that certificates it signed keep
// being verified until they are replaced.
func newCA(now time.Time, old *bundle) (*bundle, error) {
	c, err := create("CA", &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: caCNStart + fmt.Sprint(now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	caPEM := c.certPEM
	if old != nil && now.Before(old.ca.NotAfter) {
		caPEM = append(caPEM, pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: old.ca.Raw})...)
	}
	return &bundle{ca: c.cert, caKey: c.key, caPEM: caPEM, caKPEM: c.keyPEM}, nil
}

// issue returns a copy of the CA bundle b with a new serving certificate for
// dnsNames, valid from now for ServingValidity or until the CA expires,
// whichever comes first.
func (b *bundle) issue(now time.Time, dnsNames []string) (*bundle, error) {
	notAfter := now.Add(ServingValidity)
	if b.ca.NotAfter.Before(notAfter) {
		notAfter = b.ca.NotAfter
	}
	c, err := create("serving", &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
	}, b.ca, b.caKey)
	if err != nil {
		return nil, err
	}
	out := *b
	out.cert, out.certPEM, out.keyPEM = c.cert, c.certPEM, c.keyPEM
	return &out, nil
}

// renewed returns the bundle to store in place of b (nil when the Secret's
// content could not be read at all): a new serving certificate from b's CA,
// or from a new CA when b has none or its CA would expire before a new
// serving certificate's full lifetime.
func renewed(now time.Time, b *bundle, dnsNames []string) (*bundle, error) {
	if b == nil {
		return newBundle(now, dnsNames)
	}
	if b.ca.NotAfter.Before(now.Add(ServingValidity)) {
		ca, err := newCA(now, b)
		if err != nil {
			return nil, err
		}
		return ca.issue(now, dnsNames)
	}
	return b.issue(now, dnsNames)
}

// parseCerts returns the certificates of a PEM bundle, an error when it
// holds none or one does not parse.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	certs, err := pemcerts.Parse(data)
	if err != nil {
		return nil, err
	}
	return certs, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return signer, nil
}

func publicKeyMatches(c *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(c.PublicKey)
}
