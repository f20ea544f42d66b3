package nodecheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

// mitm is an endpoint at a node's address that is not the node's
// kubelet: it presents a self-signed CN=mitm certificate, asks for a
// client certificate, and records every credential it receives.
type mitm struct {
	mu       sync.Mutex
	requests int
	auth     []string // Authorization headers received
	certs    []string // subjects of client certificates received
}

func (m *mitm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests++
	if a := r.Header.Get("Authorization"); a != "" {
		m.auth = append(m.auth, a)
	}
	if r.TLS != nil {
		for _, c := range r.TLS.PeerCertificates {
			m.certs = append(m.certs, c.Subject.String())
		}
	}
	m.mu.Unlock()
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}

// start serves m over TLS on 127.0.0.1 and returns node worker-3 at it.
func (m *mitm) start(t *testing.T) *corev1.Node {
	t.Helper()
	loop := []net.IP{net.ParseIP("127.0.0.1")}
	// It names the address asked, so only the authority is wrong.
	cert := certSpec{cn: "mitm", dns: []string{"worker-3"}, ips: loop}.make(t)
	srv := httptest.NewUnstartedServer(m)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return nodeAt(t, "worker-3", srv.Listener.Addr().String())
}

// TestRunSendsNoCredentialUnverified: doctor run against a server with
// --kubelet-insecure-tls, whose node address is answered by a self-signed
// CN=mitm endpoint, sends that endpoint no token and no client
// certificate, whichever credentials it could have had, requests no token
// it cannot use, and says the node's TLS is unverified and what that
// means. (Defect 7 of issue 15: it used to send a fresh token of the
// server's ServiceAccount.)
func TestRunSendsNoCredentialUnverified(t *testing.T) {
	insecure := append(append([]string{}, serverArgs...), "--kubelet-insecure-tls")
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts/token"}, "metrics-server", errors.New("no"))
	operatorCert := certSpec{cn: "kubernetes-admin"}.make(t)
	operatorCertPEM, operatorKeyPEM := certPEMs(t, operatorCert)
	kubeletCA := newTestCA(t, "kubernetes-kubelet-ca")

	for _, tt := range []struct {
		name string
		// tokenErr refuses the ServiceAccount's token: the operator's
		// credentials (a token and a client certificate) are the ones
		// at hand.
		tokenErr error
		// kubeletCA is given to doctor; it did not sign mitm's
		// certificate.
		kubeletCA []byte
		// wantTokens is how many ServiceAccount tokens doctor may
		// request.
		wantTokens int
		want       []want
	}{
		{
			name: "the server's token at hand, no kubelet CA",
			want: []want{
				{check: CheckTLS, status: doctor.StatusWarn, says: []string{"not verified: the server runs with --kubelet-insecure-tls, so it sends its credentials to whatever answers at 127.0.0.1:", "TLS answers", "doctor cannot verify the certificate without the kubelet CA, so it sent no credential to it"}, fix: "drop --kubelet-insecure-tls"},
				{check: CheckEndpoint, status: doctor.StatusWarn, says: []string{"were not asked: the server does not verify the kubelets' certificates (--kubelet-insecure-tls)", "doctor sent no credential"}, fix: "--kubelet-certificate-authority=<file>"},
			},
		},
		{
			name: "the operator's token and client certificate at hand, no kubelet CA", tokenErr: forbidden,
			want: []want{
				{check: CheckTLS, status: doctor.StatusWarn, says: []string{"not verified", "sent no credential to it"}},
				{check: CheckEndpoint, status: doctor.StatusWarn, says: []string{"doctor sent no credential"}},
			},
		},
		{
			name: "a kubelet CA given to doctor that does not verify mitm", kubeletCA: kubeletCA.pem(), wantTokens: 1,
			want: []want{
				{check: CheckTLS, status: doctor.StatusWarn, says: []string{"not verified: the server runs with --kubelet-insecure-tls", `issued by "CN=mitm"`, "doctor sent no credential to it"}},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := &mitm{}
			node := m.start(t)
			c := newCluster(t, []*corev1.Node{node}, kubeletCA.pem(), tt.tokenErr, map[string]bool{"metrics": true, "stats": true})
			operator := &rest.Config{BearerToken: "operator-token", TLSClientConfig: rest.TLSClientConfig{CertData: operatorCertPEM, KeyData: operatorKeyPEM}}
			got := Run(context.Background(), Input{Client: c, Rest: operator, ServerArgs: insecure, KubeletCA: tt.kubeletCA,
				Resolver: fakeResolver{}, NodeTimeout: 3 * time.Second})
			m.mu.Lock()
			defer m.mu.Unlock()
			if len(m.auth) > 0 || len(m.certs) > 0 {
				t.Errorf("the endpoint with a self-signed CN=mitm certificate received Authorization %q and client certificates %q", m.auth, m.certs)
			}
			if m.requests > 0 {
				t.Errorf("the endpoint with a self-signed CN=mitm certificate received %d requests", m.requests)
			}
			if c.tokens != tt.wantTokens {
				t.Errorf("%d ServiceAccount tokens requested, want %d", c.tokens, tt.wantTokens)
			}
			checkFindings(t, got, tt.want)
		})
	}
}

// TestRunInsecureServerVerifiedHere: with --kubelet-insecure-tls on the
// server but the kubelet CA given to doctor, a kubelet whose certificate
// verifies is asked with the server's token, and the TLS finding still
// says the server does not verify.
func TestRunInsecureServerVerifiedHere(t *testing.T) {
	ca := newTestCA(t, "kubernetes-kubelet-ca")
	k := &fakeKubelet{token: saToken}
	node := startKubelet(t, "worker-3", k, certSpec{cn: "system:node:worker-3", ips: []net.IP{net.ParseIP("127.0.0.1")}, ca: ca}.make(t))
	c := newCluster(t, []*corev1.Node{node}, nil, nil, nil)
	got := Run(context.Background(), Input{Client: c, Rest: &rest.Config{}, ServerArgs: append(append([]string{}, serverArgs...), "--kubelet-insecure-tls"),
		KubeletCA: ca.pem(), Resolver: fakeResolver{}, NodeTimeout: 3 * time.Second})
	checkFindings(t, got, []want{
		{check: CheckTLS, status: doctor.StatusWarn, says: []string{"not verified: the server runs with --kubelet-insecure-tls", "doctor verified it", "signed by the kubelet CA given to doctor"}},
	})
	if k.hitCount() == 0 {
		t.Error("the kubelet whose certificate verifies was not asked")
	}
	var saw bool
	for _, f := range got {
		saw = saw || f.Check == CheckEndpoint && f.Status == doctor.StatusOK && strings.Contains(f.Message, "/metrics/resource answers")
	}
	if !saw {
		t.Errorf("no ok finding for /metrics/resource:\n%s", dump(got))
	}
}

// certPEMs encodes c's leaf and key in PEM, as a kubeconfig holds them.
func certPEMs(t *testing.T, c tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
