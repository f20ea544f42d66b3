package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s is not PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateClusterChains(t *testing.T) {
	dir := t.TempDir()
	f, err := GenerateCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := func(name string) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(readCert(t, f.Path(name+".crt")))
		return p
	}
	tests := []struct {
		name, ca string
		usage    x509.ExtKeyUsage
		dnsName  string
		cn       string
	}{
		{APIServer, ClusterCA, x509.ExtKeyUsageServerAuth, "kubernetes.default.svc", "kube-apiserver"},
		{MetricsServing, ClusterCA, x509.ExtKeyUsageServerAuth, MetricsServerDNS, "metrics-server"},
		{FrontProxyClient, FrontProxyCA, x509.ExtKeyUsageClientAuth, "", ProxyClientName},
		{Admin, ClusterCA, x509.ExtKeyUsageClientAuth, "", "kubemetrics-admin"},
		{ControllerManager, ClusterCA, x509.ExtKeyUsageClientAuth, "", "system:kube-controller-manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := readCert(t, f.Path(tt.name+".crt"))
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool(tt.ca), DNSName: tt.dnsName, KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err != nil {
				t.Errorf("%s does not verify against %s for %v: %v", tt.name, tt.ca, tt.usage, err)
			}
			if c.Subject.CommonName != tt.cn {
				t.Errorf("CN %q, want %q", c.Subject.CommonName, tt.cn)
			}
			// The proxy client must not verify against the cluster CA: the
			// two trust roots are kept apart on purpose.
			if tt.ca == FrontProxyCA {
				if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ClusterCA), KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err == nil {
					t.Errorf("front proxy client verifies against the cluster CA")
				}
			}
		})
	}
	if st, err := os.Stat(filepath.Join(dir, ServiceAccountKey+".key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("service account key missing or readable by others: %v %v", st, err)
	}
	ca, err := LoadCA(f.Path(KubeletCA+".crt"), f.Path(KubeletCA+".key"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(Request{CommonName: "node-1", DNSNames: []string{"node-1"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: pool(KubeletCA), DNSName: "node-1"}); err != nil {
		t.Errorf("kubelet serving cert from the loaded CA does not verify: %v", err)
	}
}
