package e2einstall

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// The serving-certificate bootstrap of manifests/base.
const (
	bootstrapNamespace = "kube-system"
	// bootstrapSecret is shipped empty by the base (type Opaque, which
	// never changes) and filled by the server.
	bootstrapSecret = "metrics-server-tls-bootstrap"
	// servedName is the name the kube-apiserver's aggregator verifies:
	// <service>.<namespace>.svc of the APIService's Service.
	servedName = "metrics-server.kube-system.svc"
)

// TestBaseInstallVerified installs manifests/base as it is (its Deployment
// run with its own arguments, so with --tls-bootstrap-secret), and checks
// that the kube-apiserver verifies our serving certificate: both
// APIServices become Available with insecureSkipTLSVerify false and a
// caBundle that is the CA the server stored in its Secret, the server
// presents a certificate for metrics-server.kube-system.svc chaining to
// it, and kubectl top node and pod work through them. The kubelets' TLS is
// verified too (the base has no --kubelet-insecure-tls; the fleet's
// certificates chain to the cluster CA of the server's kubeconfig).
//
// Then it proves the verification is real: an APIService given a wrong
// caBundle becomes unavailable with an x509 error, and the bootstrap puts
// the right one back (it checks for drift once a minute).
func TestBaseInstallVerified(t *testing.T) {
	in := install(t, "base", renderKustomize(t, "manifests/base"))
	r := startServer(t, in, localcluster.StartOptions{})
	if got := argValue(r.Args, "--tls-bootstrap-secret"); got != bootstrapNamespace+"/"+bootstrapSecret {
		t.Fatalf("the base's server runs with --tls-bootstrap-secret=%q, want %s/%s: %v", got, bootstrapNamespace, bootstrapSecret, r.Args)
	}
	for _, insecure := range []string{"--kubelet-insecure-tls", "--deprecated-kubelet-completely-insecure"} {
		if hasArg(r.Args, insecure) {
			t.Errorf("the base's server runs with %s", insecure)
		}
	}
	waitAvailable(t, in)

	ca := secretCA(t)
	for _, name := range in.APIServices {
		a := getAPIService(t, name)
		if a.Spec.InsecureSkipTLSVerify {
			t.Errorf("APIService %s: insecureSkipTLSVerify true", name)
		}
		if !bytes.Equal(a.Spec.CABundle, ca) {
			t.Errorf("APIService %s: caBundle is not the ca.crt of Secret %s/%s:\n%s", name, bootstrapNamespace, bootstrapSecret, a.Spec.CABundle)
		}
		if a.Spec.Service.Port != r.Port {
			t.Errorf("APIService %s: service port %d, want the server's %d", name, a.Spec.Service.Port, r.Port)
		}
	}
	checkServedCertificate(t, r.Port, ca)
	waitTop(t)

	t.Run("a wrong caBundle is refused", func(t *testing.T) {
		const name = "v1beta1.metrics.k8s.io"
		wrong, err := pki.NewCA("not-the-metrics-server-ca")
		if err != nil {
			t.Fatal(err)
		}
		wrongPEM := pki.CertPEM(wrong.Cert)
		// The bootstrap may put the right CA back before the aggregator
		// has checked the wrong one: try up to three times.
		var message string
		for attempt := 1; attempt <= 3 && message == ""; attempt++ {
			patch := fmt.Sprintf(`{"spec":{"caBundle":%q}}`, base64.StdEncoding.EncodeToString(wrongPEM))
			kubectl(t, "patch", "apiservice", name, "--type", "merge", "-p", patch)
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				status, msg, err := e.cluster.APIServiceAvailable(context.Background(), name)
				if err != nil {
					t.Fatal(err)
				}
				if status == "False" {
					message = msg
					break
				}
				if !bytes.Equal(getAPIService(t, name).Spec.CABundle, wrongPEM) {
					logf("attempt %d: the bootstrap restored %s's caBundle before the aggregator checked it", attempt, name)
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		if message == "" {
			t.Fatalf("APIService %s stayed Available with a caBundle of another CA", name)
		}
		if !strings.Contains(message, "x509") {
			t.Errorf("APIService %s with a wrong caBundle is unavailable, but not for TLS: %s", name, message)
		}
		logf("with a wrong caBundle: %s", message)

		// The bootstrap notices the drift (once a minute) and restores it.
		waitFor(t, 2*time.Minute, func() error {
			if a := getAPIService(t, name); !bytes.Equal(a.Spec.CABundle, ca) || a.Spec.InsecureSkipTLSVerify {
				return fmt.Errorf("APIService %s: caBundle not yet restored", name)
			}
			status, msg, err := e.cluster.APIServiceAvailable(context.Background(), name)
			if err != nil {
				return err
			}
			if status != "True" {
				return fmt.Errorf("APIService %s not Available again: %s", name, msg)
			}
			return nil
		})
		waitTop(t)
	})
}

// secretCA returns ca.crt of the bootstrap's Secret, which must exist,
// be the Opaque shell the base ships, and hold what the server wrote.
func secretCA(t *testing.T) []byte {
	t.Helper()
	s, err := e.client.CoreV1().Secrets(bootstrapNamespace).Get(context.Background(), bootstrapSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the bootstrap's Secret: %v", err)
	}
	if s.Type != "Opaque" {
		t.Errorf("Secret %s/%s is of type %s, want Opaque (the shell the base ships)", bootstrapNamespace, bootstrapSecret, s.Type)
	}
	if len(s.Data["tls.crt"]) == 0 || len(s.Data["tls.key"]) == 0 {
		t.Errorf("Secret %s/%s lacks tls.crt or tls.key (keys %v): the server did not fill it", bootstrapNamespace, bootstrapSecret, keys(s.Data))
	}
	ca := s.Data["ca.crt"]
	if len(ca) == 0 {
		t.Fatalf("Secret %s/%s has no ca.crt (keys %v)", bootstrapNamespace, bootstrapSecret, keys(s.Data))
	}
	return ca
}

// checkServedCertificate dials the server as the aggregator does (server
// name metrics-server.kube-system.svc) trusting only ca.
func checkServedCertificate(t *testing.T, port int, ca []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("ca.crt holds no PEM certificate")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{
		RootCAs: pool, ServerName: servedName, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatalf("the server's certificate does not verify for %s against the Secret's CA: %v", servedName, err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	logf("served certificate: subject %q, DNS names %v, valid until %s", leaf.Subject, leaf.DNSNames, leaf.NotAfter.Format(time.RFC3339))
}

// argValue is the value of the last --name=value in args.
func argValue(args []string, name string) string {
	v := ""
	for _, a := range args {
		if n, value, ok := strings.Cut(a, "="); ok && n == name {
			v = value
		}
	}
	return v
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
