package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// Credentials of the security tests: long and distinct, so a test that
// searches the logs for them cannot match anything else.
const (
	kubeletSecretToken = "kubelet-sa-token-5c0ffee1d3a4b7e9f2a8c6d4"
	authAPIToken       = "auth-delegation-token-9e1b7c3a5d2f8e6b4a0c"
	aliceToken         = "alice-token-7f3e9a1c5b8d2e6f4a0b9c3d"
	nobodyToken        = "nobody-token-2b8e4f6a0c9d1e3f5a7b8c6e"
	unknownToken       = "stolen-token-4d6f8a0b2c4e6a8c0e2a4c6e"
)

// Who is who at the server's front door.
const (
	userAlice   = "alice"        // granted the metrics API, /metrics and /debug
	userNobody  = "nobody"       // authenticated, granted nothing
	userMallory = "mallory"      // a client certificate of the cluster CA, granted nothing
	userForged  = "forged-admin" // granted everything: only a forged header names it
	userBob     = "bob"          // named by the real front proxy, granted nothing
)

// secureServer is the real server with delegated authentication and
// authorization, as deployed: requestheader and client CAs, TokenReview and
// SubjectAccessReview against a fake kube-apiserver, the aggregation-layer
// PKI of certs/pki, and one realistic fake kubelet behind a bearer token.
type secureServer struct {
	addr  string
	files pki.Files
	auth  *fakeAuthAPI
	// Stop stops the server and waits for it; it may be called more than
	// once.
	Stop func()
}

func startSecureServer(t *testing.T) *secureServer {
	t.Helper()
	files, err := pki.GenerateCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	metricsAPI := func(verb string) []accessRule {
		return []accessRule{{verb, "metrics.k8s.io/nodes"}, {verb, "metrics.k8s.io/pods"}}
	}
	auth := &fakeAuthAPI{
		clientToken: authAPIToken,
		tokens: map[string]authenticationv1.UserInfo{
			aliceToken:  {Username: userAlice, Groups: []string{"system:authenticated"}},
			nobodyToken: {Username: userNobody, Groups: []string{"system:authenticated"}},
		},
		grants: map[string][]accessRule{
			userAlice: append(append(metricsAPI("get"), metricsAPI("list")...),
				accessRule{"get", "/metrics"}, accessRule{"get", "/debug/pprof*"}, accessRule{"put", "/debug/flags/v"}),
			userForged: {{"get", "*"}, {"list", "*"}, {"put", "*"}},
		},
	}
	authSrv := auth.serve()
	t.Cleanup(authSrv.Close)
	kubeconfig := writeAuthKubeconfig(t, authSrv)

	kube := fake.NewClientset(loopbackNode("node-large", mustPort(t, startDBKubelet(t).URL)))
	meta := fakeMetadata(t, podMeta("ns1", "db-0", map[string]string{"app": "db"}))
	opts := secureOptions(files, kubeconfig)
	addr, stop := runServer(t, opts, kubeletSecretToken, kube, meta)

	s := &secureServer{addr: addr, files: files, auth: auth, Stop: stop}
	// Probes are anonymous: the first sign the server serves.
	waitFor(t, 30*time.Second, func() error {
		if code, body := s.call(t, caller{}, http.MethodGet, "/readyz", ""); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	return s
}

// writeAuthKubeconfig writes the kubeconfig the server's delegated
// authentication and authorization use to reach srv.
func writeAuthKubeconfig(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["fake"] = &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthorityData: pki.CertPEM(srv.Certificate())}
	cfg.AuthInfos["metrics-server"] = &clientcmdapi.AuthInfo{Token: authAPIToken}
	cfg.Contexts["fake"] = &clientcmdapi.Context{Cluster: "fake", AuthInfo: "metrics-server"}
	cfg.CurrentContext = "fake"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// caller is one way of knocking: a client certificate, a bearer token and
// extra headers, each optional.
type caller struct {
	cert    *tls.Certificate
	token   string
	headers map[string]string
}

// call makes one request on a fresh connection (a client certificate
// belongs to the connection) and returns the status and body.
func (s *secureServer) call(t *testing.T, c caller, method, path, body string) (int, string) {
	t.Helper()
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(s.files.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(ca)
	tr := &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{
			RootCAs: roots,
			// Offer the certificate whatever CAs the server says it
			// accepts: a hostile client would.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if c.cert == nil {
					return &tls.Certificate{}, nil
				}
				return c.cert, nil
			},
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, "https://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// issue signs a client certificate named cn with the CA whose files are
// named caName in files, or with ca when given.
func issue(t *testing.T, files pki.Files, caName string, ca *pki.CA, cn string) *tls.Certificate {
	t.Helper()
	if ca == nil {
		var err error
		if ca, err = pki.LoadCA(files.Path(caName+".crt"), files.Path(caName+".key")); err != nil {
			t.Fatal(err)
		}
	}
	kp, err := ca.Issue(pki.Request{CommonName: cn, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert}
}

// frontProxy is the kube-apiserver's own proxy client certificate.
func frontProxy(t *testing.T, files pki.Files) *tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(files.Path(pki.FrontProxyClient+".crt"), files.Path(pki.FrontProxyClient+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}
