package kubelet

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

// caValid makes a CA named cn valid from notBefore to notAfter and a
// serving certificate for 127.0.0.1 it signs, valid from a year ago to a
// year from now.
func caValid(t *testing.T, cn string, notBefore, notAfter time.Time) (caDER []byte, serving tls.Certificate) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, key := newKey(), newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn, Organization: []string{"kubernetes"}},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	leaf := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "system:node:worker-3"},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, key.Public(), crypto.Signer(caKey))
	if err != nil {
		t.Fatal(err)
	}
	return caDER, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSCauseNamesTheExpiredCA: when the CA the server trusts for the
// kubelets has expired (or is not valid yet) while the kubelet's serving
// certificate is within its dates, the scrape error (which the log, the
// Node event and /status quote) names that CA, its subject and dates,
// and does not blame the kubelet's certificate. (Issue 15, defect 9.)
func TestTLSCauseNamesTheExpiredCA(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name                string
		notBefore, notAfter time.Time
		want                string
	}{
		{name: "expired CA", notBefore: now.Add(-10 * 365 * 24 * time.Hour), notAfter: now.Add(-49 * time.Hour),
			want: `the CA "CN=kubelet-ca,O=kubernetes" that the kubelet's serving certificate chains to expired at ` + now.Add(-49*time.Hour).UTC().Format(time.RFC3339)},
		{name: "CA not valid yet", notBefore: now.Add(3 * time.Hour), notAfter: now.Add(10 * 365 * 24 * time.Hour),
			want: `the CA "CN=kubelet-ca,O=kubernetes" that the kubelet's serving certificate chains to is not valid before ` + now.Add(3*time.Hour).UTC().Format(time.RFC3339)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			caDER, serving := caValid(t, "kubelet-ca", tt.notBefore, tt.notAfter)
			k := &kubelet{}
			k.set(summaryPath, answer{200, readTestdata(t, "summary-no-pods.json"), 0})
			srv := httptest.NewUnstartedServer(k)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
			srv.StartTLS()
			defer srv.Close()
			caFile := filepath.Join(t.TempDir(), "ca.crt")
			writePEM(t, caFile, caDER)
			restCfg, scheme := RestConfigFor(&rest.Config{BearerToken: "tok"}, TLSOptions{CAFile: caFile})
			c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointSummary})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetMetrics(context.Background(), nodeFor(t, srv))
			if ReasonOf(err) != ReasonTLS {
				t.Errorf("reason %s, want %s (err: %v)", ReasonOf(err), ReasonTLS, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "the kubelet's serving certificate has expired") {
				t.Errorf("error %v blames the kubelet's serving certificate, which is within its dates", err)
			}
			cause, fix := ExplainTLS(err, "127.0.0.1:10250")
			if !strings.Contains(cause, "kubelet-ca") || !strings.Contains(fix, "renew that CA") {
				t.Errorf("ExplainTLS: cause %q, fix %q; want the CA named in the cause and its renewal in the fix", cause, fix)
			}
		})
	}
}
