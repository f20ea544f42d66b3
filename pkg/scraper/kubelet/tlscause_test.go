package kubelet

import (
	"context"
	"crypto/tls"
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

// TestTLSFailuresSayWhy: a refused kubelet certificate, or a kubelet that
// does not speak TLS, fails with reason tls and a cause in words that
// names what to check.
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
	}{
		{name: "unknown CA", cert: ptr(servingCert(t, now.Add(-time.Hour), now.Add(time.Hour), loopback)), trust: selfSignedDER(t), want: "signed by an authority not trusted", reason: ReasonTLS},
		{name: "another address", cert: ptr(servingCert(t, now.Add(-time.Hour), now.Add(time.Hour), net.ParseIP("10.0.0.7"))), want: "not valid for the address", reason: ReasonTLS},
		{name: "expired", cert: ptr(servingCert(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), loopback)), want: "check its rotation and the clocks", reason: ReasonTLS},
		{name: "not yet valid", cert: ptr(servingCert(t, now.Add(24*time.Hour), now.Add(48*time.Hour), loopback)), want: "check its rotation and the clocks", reason: ReasonTLS},
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
		})
	}
}

func ptr[T any](v T) *T { return &v }
