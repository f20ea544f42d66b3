package kubelet

import (
	"context"
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

// servingCert makes a self-signed serving certificate for ips, valid
// from notBefore to notAfter.
func servingCert(t *testing.T, notBefore, notAfter time.Time, ips ...net.IP) tls.Certificate {
	t.Helper()
	der, key := selfSignedFor(t, "kubelet", notBefore, notAfter, ips...)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// hostnameCert makes a self-signed serving certificate naming only dns, as
// a kubelet makes for itself when it does not bootstrap its serving
// certificate (no IP SAN).
func hostnameCert(t *testing.T, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(43),
		Subject:               pkix.Name{CommonName: dns[0] + "@1764470000"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSFailuresSayWhy: a refused kubelet certificate, or a kubelet that
// does not speak TLS, fails with reason tls and a cause in words that
// names what to check; a refused certificate also names the two fixes
// (the cluster's kubelet CA with serverTLSBootstrap, or skipping
// verification on a test cluster).
func TestTLSFailuresSayWhy(t *testing.T) {
	now := time.Now()
	loopback := net.ParseIP("127.0.0.1")
	for _, tt := range []struct {
		name string
		cert *tls.Certificate // nil: plain HTTP
		// trust is the CA the client is given; nil: the serving certificate.
		trust  []byte
		want   string
		reason Reason
		fixes  bool // the x509 fixes are named
	}{
		{name: "unknown CA", cert: ptr(servingCert(t, now.Add(-time.Hour), now.Add(time.Hour), loopback)), trust: selfSignedDER(t), want: "signed by an authority not trusted", reason: ReasonTLS, fixes: true},
		{name: "IP SAN of another address", cert: ptr(servingCert(t, now.Add(-time.Hour), now.Add(time.Hour), net.ParseIP("10.0.0.7"))), want: "has no IP SAN for the address asked, 127.0.0.1 (its SANs: IP:10.0.0.7)", reason: ReasonTLS, fixes: true},
		{name: "hostname only", cert: ptr(hostnameCert(t, "node-a17.pool-3.example")), want: "has no IP SAN for the address asked, 127.0.0.1 (its SANs: DNS:node-a17.pool-3.example)", reason: ReasonTLS, fixes: true},
		{name: "no SAN", cert: ptr(servingCert(t, now.Add(-time.Hour), now.Add(time.Hour))), want: "has no IP SAN for the address asked, 127.0.0.1 (its SANs: none)", reason: ReasonTLS, fixes: true},
		{name: "expired", cert: ptr(servingCert(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), loopback)), want: "check its rotation and the clocks", reason: ReasonTLS, fixes: true},
		{name: "not yet valid", cert: ptr(servingCert(t, now.Add(24*time.Hour), now.Add(48*time.Hour), loopback)), want: "check its rotation and the clocks", reason: ReasonTLS, fixes: true},
		{name: "plain HTTP", want: "did not answer with TLS", reason: ReasonTLS},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := &kubelet{}
			k.set(summaryPath, answer{200, readTestdata(t, "summary-no-pods.json"), 0})
			srv := httptest.NewUnstartedServer(k)
			caFile := filepath.Join(t.TempDir(), "ca.crt")
			if tt.cert != nil {
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{*tt.cert}}
				srv.StartTLS()
				trust := tt.trust
				if trust == nil {
					trust = tt.cert.Certificate[0]
				}
				writePEM(t, caFile, trust)
			} else {
				srv.Start()
				writePEM(t, caFile, selfSignedDER(t))
			}
			defer srv.Close()
			restCfg, scheme := RestConfigFor(&rest.Config{BearerToken: "tok"}, TLSOptions{CAFile: caFile})
			c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointSummary})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetMetrics(context.Background(), nodeFor(t, srv))
			if ReasonOf(err) != tt.reason {
				t.Errorf("reason %s, want %s (err: %v)", ReasonOf(err), tt.reason, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v does not say %q", err, tt.want)
			}
			for _, fix := range []string{"--kubelet-certificate-authority", "serverTLSBootstrap: true", "--kubelet-insecure-tls"} {
				if got := err != nil && strings.Contains(err.Error(), fix); got != tt.fixes {
					t.Errorf("error %v names %q: %v, want %v", err, fix, got, tt.fixes)
				}
			}
		})
	}
}

// TestHostnameCause: the address asked and the names the certificate
// holds, at most eight of them.
func TestHostnameCause(t *testing.T) {
	var many []net.IP
	for i := 1; i <= 11; i++ {
		many = append(many, net.IPv4(10, 0, 3, byte(i)))
	}
	for _, tt := range []struct {
		name string
		err  x509.HostnameError
		want string
	}{
		{name: "IP asked, DNS named", err: x509.HostnameError{Host: "10.0.3.17", Certificate: &x509.Certificate{DNSNames: []string{"node-a17"}}},
			want: "has no IP SAN for the address asked, 10.0.3.17 (its SANs: DNS:node-a17)"},
		{name: "name asked", err: x509.HostnameError{Host: "node-a17.pool-3.example", Certificate: &x509.Certificate{IPAddresses: []net.IP{net.IPv4(10, 0, 3, 17)}}},
			want: "does not name the host asked, node-a17.pool-3.example (its SANs: IP:10.0.3.17)"},
		{name: "many names", err: x509.HostnameError{Host: "10.0.3.17", Certificate: &x509.Certificate{IPAddresses: many}},
			want: "(its SANs: IP:10.0.3.1, IP:10.0.3.2, IP:10.0.3.3, IP:10.0.3.4, IP:10.0.3.5, IP:10.0.3.6, IP:10.0.3.7, IP:10.0.3.8 and 3 more)"},
		{name: "no certificate", err: x509.HostnameError{Host: "10.0.3.17"}, want: "10.0.3.17 (its SANs: none)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := hostnameCause(tt.err, tt.err.Host+":10250"); !strings.Contains(got, tt.want) {
				t.Errorf("hostnameCause = %q, want it to say %q", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
