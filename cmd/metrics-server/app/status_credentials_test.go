package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// mitmServer is an endpoint posing as metrics-server: a self-signed CN=mitm
// certificate that names 127.0.0.1 and the Service's name, a request for a
// client certificate, and a record of every credential it receives.
type mitmServer struct {
	url string
	mu  sync.Mutex
	// requests, auth (Authorization headers) and certs (client
	// certificate subjects) received.
	requests int
	auth     []string
	certs    []string
}

func startMITM(t *testing.T) *mitmServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(66), Subject: pkix.Name{CommonName: "mitm"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{pki.MetricsServerDNS}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	m := &mitmServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.requests++
		if a := r.Header.Get("Authorization"); a != "" {
			m.auth = append(m.auth, a)
		}
		for _, c := range r.TLS.PeerCertificates {
			m.certs = append(m.certs, c.Subject.String())
		}
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, ClientAuth: tls.RequestClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	m.url = srv.URL
	return m
}

// TestStatusSendsNoCredentialUnverified: metrics-server status, pointed at
// an endpoint with a self-signed CN=mitm certificate, sends it neither
// the kubeconfig's token nor its client certificate: not with the
// APIService's caBundle (the default), not with another CA given, and not
// with --insecure-skip-tls-verify, where the request goes out anonymous
// and the error says why. Each refusal exits 1.
func TestStatusSendsNoCredentialUnverified(t *testing.T) {
	files, err := pki.GenerateCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(files.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewTLSServer(operatorAPI(ca))
	t.Cleanup(api.Close)
	c := &statusCluster{operatorAPI: api.URL, operatorCA: pki.CertPEM(api.Certificate())}
	cert := issue(t, files, pki.ClusterCA, nil, userCertOps)
	key, err := pki.KeyPEM(cert.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	// The operator's kubeconfig holds both a token and a client
	// certificate.
	kc := "--kubeconfig=" + c.kubeconfig(t, operatorToken, pki.CertPEM(cert.Leaf), key)
	otherCA := files.Path(pki.FrontProxyCA + ".crt")

	for _, tt := range []struct {
		name string
		args []string
		// reached: the mitm may see a request (without credentials).
		reached bool
		want    string
	}{
		{name: "verified with the APIService's caBundle", want: "certificate signed by unknown authority"},
		{name: "verified with another CA", args: []string{"--certificate-authority=" + otherCA}, want: "certificate signed by unknown authority"},
		{name: "not verified: anonymous", args: []string{"--insecure-skip-tls-verify"}, reached: true,
			want: "refused an anonymous request (401): with --insecure-skip-tls-verify its certificate is not verified, so your credentials are not sent to it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := startMITM(t)
			_, err := runStatus(t, append([]string{kc, "--server=" + m.url}, tt.args...)...)
			var exit *ExitError
			if !errors.As(err, &exit) || exit.Code != statusExitFailed || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want exit status %d saying %q", err, statusExitFailed, tt.want)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if len(m.auth) > 0 || len(m.certs) > 0 {
				t.Errorf("the CN=mitm endpoint received Authorization %q and client certificates %q", m.auth, m.certs)
			}
			if got := m.requests > 0; got != tt.reached {
				t.Errorf("the CN=mitm endpoint saw a request: %v, want %v", got, tt.reached)
			}
		})
	}
}

// TestStatusPodThatDoesNotExist: status pod of a pod the kube-apiserver
// does not know says so and exits 1, as JSON too, printing no answer (it
// said NotRunning and exited 0). The server is never asked.
func TestStatusPodThatDoesNotExist(t *testing.T) {
	files, err := pki.GenerateCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(files.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewTLSServer(operatorAPI(ca))
	t.Cleanup(api.Close)
	c := &statusCluster{operatorAPI: api.URL, operatorCA: pki.CertPEM(api.Certificate())}
	kc := "--kubeconfig=" + c.kubeconfig(t, operatorToken, nil, nil)
	m := startMITM(t) // stands for the server: it must not be asked
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			out, err := runStatus(t, kc, "--server="+m.url, "--insecure-skip-tls-verify", "-o", output, "pod", "ns1/gone")
			var exit *ExitError
			const want = "pod ns1/gone does not exist (kubectl get pod -n ns1 gone)"
			if !errors.As(err, &exit) || exit.Code != statusExitFailed || err.Error() != want {
				t.Errorf("error %v, want exit status %d saying %q", err, statusExitFailed, want)
			}
			if strings.Contains(out, "NotRunning") || strings.Contains(out, "{") || strings.Contains(out, "Served") {
				t.Errorf("printed an answer: %q", out)
			}
		})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests != 0 {
		t.Errorf("the server was asked %d times about a pod that does not exist", m.requests)
	}
}
