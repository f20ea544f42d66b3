package pki

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Names the aggregation layer depends on.
const (
	// ProxyClientName is the CN of the certificate the kube-apiserver
	// presents when it proxies to an aggregated server; it must be listed in
	// --requestheader-allowed-names.
	ProxyClientName = "front-proxy-client"
	// MetricsServerDNS is the name the APIService's service resolves to.
	MetricsServerDNS = "metrics-server.kube-system.svc"
)

// Files are the paths of a generated cluster PKI, relative to its dir.
type Files struct {
	Dir string
}

func (f Files) Path(name string) string { return filepath.Join(f.Dir, name) }

// The file names written by GenerateCluster.
const (
	ClusterCA         = "ca"                 // signs serving certs of the apiserver and client certs of users and components
	APIServer         = "apiserver"          // kube-apiserver serving certificate
	Admin             = "admin"              // client: system:masters
	ControllerManager = "controller-manager" // client: system:kube-controller-manager
	Scheduler         = "scheduler"          // client: system:kube-scheduler
	FrontProxyCA      = "front-proxy-ca"     // --requestheader-client-ca-file
	FrontProxyClient  = "front-proxy-client" // --proxy-client-cert-file / --proxy-client-key-file
	MetricsServing    = "metrics-server"     // metrics server --tls-cert-file; the APIService caBundle is ca.crt
	KubeletCA         = "kubelet-ca"         // signs the simulated kubelets' serving certificates
	ServiceAccountKey = "sa"                 // sa.key signs tokens, sa.pub verifies them
)

// GenerateCluster writes a complete PKI for a control plane on loopback into
// dir and returns it. The kube-apiserver's certificate also names
// apiServerIPs: the address it binds when not on loopback, and the
// `kubernetes` Service's ClusterIP that pods dial.
func GenerateCluster(dir string, apiServerIPs ...net.IP) (Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	ca, err := NewCA("kubemetrics-local-cluster-ca")
	if err != nil {
		return Files{}, err
	}
	frontCA, err := NewCA("kubemetrics-front-proxy-ca")
	if err != nil {
		return Files{}, err
	}
	kubeletCA, err := NewCA("kubemetrics-kubelet-ca")
	if err != nil {
		return Files{}, err
	}
	for name, c := range map[string]*CA{ClusterCA: ca, FrontProxyCA: frontCA, KubeletCA: kubeletCA} {
		if err := WritePair(dir, name, c.Cert, c.Key); err != nil {
			return Files{}, err
		}
	}
	issue := []struct {
		name string
		ca   *CA
		req  Request
	}{
		{APIServer, ca, Request{CommonName: "kube-apiserver", Server: true,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPs:      append(append([]net.IP{}, loopback...), apiServerIPs...)}},
		{Admin, ca, Request{CommonName: "kubemetrics-admin", Organizations: []string{"system:masters"}, Client: true}},
		{ControllerManager, ca, Request{CommonName: "system:kube-controller-manager", Client: true}},
		{Scheduler, ca, Request{CommonName: "system:kube-scheduler", Client: true}},
		{FrontProxyClient, frontCA, Request{CommonName: ProxyClientName, Client: true}},
		{MetricsServing, ca, Request{CommonName: "metrics-server", Server: true,
			DNSNames: []string{"localhost", "metrics-server", "metrics-server.kube-system", MetricsServerDNS},
			IPs:      loopback}},
	}
	for _, i := range issue {
		kp, err := i.ca.Issue(i.req)
		if err != nil {
			return Files{}, err
		}
		if err := WritePair(dir, i.name, kp.Cert, kp.Key); err != nil {
			return Files{}, err
		}
	}
	sa, err := NewCA("service-account-signer") // only its key is used
	if err != nil {
		return Files{}, err
	}
	key, err := KeyPEM(sa.Key)
	if err != nil {
		return Files{}, err
	}
	pub, err := PublicKeyPEM(sa.Key)
	if err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, ServiceAccountKey+".key"), key, 0o600); err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, ServiceAccountKey+".pub"), pub, 0o644); err != nil {
		return Files{}, fmt.Errorf("writing the service account key: %w", err)
	}
	return Files{Dir: dir}, nil
}
