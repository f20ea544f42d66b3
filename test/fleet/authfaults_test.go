package fleet

import (
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// TestRefuseToken: every endpoint answers 401 Unauthorized, with the
// kubelet's body, until the mode changes back.
func TestRefuseToken(t *testing.T) {
	f, n := testNode(t, 0, 2, 18<<30)
	srv, _ := faultServer(t, f, n)
	if err := f.SetMode(n.name, ModeRefuseToken); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/metrics/resource", "/stats/summary?only_cpu_and_memory=true"} {
		if code, _, err := fetch(t, srv.URL, path, 5*time.Second); code != http.StatusUnauthorized {
			t.Errorf("%s refusing tokens: %d %v, want 401", path, code, err)
		}
	}
	if err := f.SetMode(n.name, ModeNormal); err != nil {
		t.Fatal(err)
	}
	if code, _, err := fetch(t, srv.URL, "/metrics/resource", 5*time.Second); code != http.StatusOK {
		t.Errorf("after the mode is back: %d %v", code, err)
	}
}

// TestHostnameOnlyCert: the certificate is the kubelet CA's, names the
// node's host name and no IP address; other modes keep the normal one.
func TestHostnameOnlyCert(t *testing.T) {
	ca, err := pki.NewCA("kubelet-ca")
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Nodes: 1, Prefix: "doc", KubeletCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	n := f.nodes[0]
	c, err := f.modeCert(n, ModeHostnameOnlyCert)
	if err != nil || c == nil {
		t.Fatalf("modeCert = %v, %v", c, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 0 || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != n.name {
		t.Errorf("SANs DNS %v IP %v, want only DNS:%s", leaf.DNSNames, leaf.IPAddresses, n.name)
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("not signed by the kubelet CA: %v", err)
	}
	if err := leaf.VerifyHostname(net.ParseIP("127.1.0.1").String()); err == nil {
		t.Error("the certificate names the node's IP address")
	}
	for _, m := range []Mode{ModeNormal, ModeWrongTLSName, ModeRefuseToken} {
		if c, err := f.modeCert(n, m); c != nil || err != nil {
			t.Errorf("mode %q changes the certificate: %v, %v", m, c, err)
		}
	}
}
