package doctor

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// discoveryError builds the message the kube-aggregator's availability
// controller writes for a failed discovery GET (k8s.io/kube-aggregator
// v0.37.2 remote_available_controller.go): "failing or missing response from
// <url>: <error>", the error being what Go's HTTP client really returned.
func discoveryError(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if resp != nil {
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 300 {
			err = fmt.Errorf("bad status from %v: %d", url, resp.StatusCode)
		}
	}
	if err == nil {
		t.Fatalf("GET %s succeeded, want an error", url)
	}
	return fmt.Errorf("failing or missing response from %v: %w", url, err).Error()
}

func TestDecodeAvailableFromRealErrors(t *testing.T) {
	status := func(code int) *httptest.Server {
		s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(s.Close)
		return s
	}
	hang := httptest.NewTLSServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "https://" + l.Addr().String() + "/apis/metrics.k8s.io/v1beta1"
	l.Close()

	ok := status(200)
	trusting := func(s *httptest.Server, serverName string, timeout time.Duration) *http.Client {
		c := s.Client()
		if serverName != "" {
			c.Transport.(*http.Transport).TLSClientConfig.ServerName = serverName
		}
		c.Timeout = timeout
		return c
	}
	tests := []struct {
		name       string
		message    string
		wantKind   CauseKind
		wantStatus int
	}{
		{"connection refused", discoveryError(t, &http.Client{Timeout: 5 * time.Second}, refused), CauseConnectionRefused, 0},
		{"unknown authority", discoveryError(t, &http.Client{Timeout: 5 * time.Second}, ok.URL+"/apis/metrics.k8s.io/v1beta1"), CauseTLSUnknownCA, 0},
		{"name not in the certificate", discoveryError(t, trusting(ok, "metrics-server.kube-system.svc", 5*time.Second), ok.URL+"/apis/metrics.k8s.io/v1beta1"), CauseTLSName, 0},
		{"client timeout", discoveryError(t, trusting(hang, "", 200*time.Millisecond), hang.URL+"/apis/metrics.k8s.io/v1beta1"), CauseTimeout, 0},
		{"401", discoveryError(t, trusting(status(401), "", 5*time.Second), status(401).URL+"/apis/metrics.k8s.io/v1beta1"), CauseUnauthorized, 401},
		{"403", discoveryError(t, trusting(status(403), "", 5*time.Second), status(403).URL+"/apis/metrics.k8s.io/v1"), CauseForbidden, 403},
		{"503", discoveryError(t, trusting(status(503), "", 5*time.Second), status(503).URL+"/apis/metrics.k8s.io/v1beta1"), CauseNotReady, 503},
		{"404", discoveryError(t, trusting(status(404), "", 5*time.Second), status(404).URL+"/apis/metrics.k8s.io/v1"), CauseNotServed, 404},
		{"500", discoveryError(t, trusting(status(500), "", 5*time.Second), status(500).URL+"/apis/metrics.k8s.io/v1beta1"), CauseBadStatus, 500},
		{"expired", "failing or missing response from https://10.96.14.7:443/apis/metrics.k8s.io/v1beta1: " + expiredError(t, ok), CauseTLSExpired, 0},
		{"no answer in 6 s", "timed out waiting for https://10.96.14.7:443/apis/metrics.k8s.io/v1beta1", CauseTimeout, 0},
		{"no such host", `failing or missing response from https://localhost:4443/apis/metrics.k8s.io/v1beta1: Get "https://metrics.example.invalid:4443/apis/metrics.k8s.io/v1beta1": dial tcp: lookup metrics.example.invalid on 10.0.0.2:53: no such host`, CauseDNS, 0},
		{"routing finds no endpoints", `no endpoints available for service "metrics-server"`, CauseNoEndpoints, 0},
		{"routing to ExternalName", `unsupported service type "ExternalName"`, CauseRoutingType, 0},
		{"unrecognised", `failing or missing response from https://10.96.14.7:443/apis/metrics.k8s.io/v1beta1: Get "https://10.96.14.7:443/apis/metrics.k8s.io/v1beta1": EOF`, CauseDiscovery, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecodeAvailable("FailedDiscoveryCheck", tt.message)
			if got.Kind != tt.wantKind || got.Status != tt.wantStatus {
				t.Errorf("DecodeAvailable(%q) = %s/%d, want %s/%d", tt.message, got.Kind, got.Status, tt.wantKind, tt.wantStatus)
			}
			f := got.finding("v1beta1.metrics.k8s.io", "kube-system/metrics-server")
			if f.Status != StatusFail || f.Message == "" || f.Fix == "" {
				t.Errorf("finding for %s = %+v, want a failure with a message and a fix", tt.name, f)
			}
		})
	}
}

// expiredError is Go's own error for a certificate past its NotAfter.
func expiredError(t *testing.T, s *httptest.Server) string {
	t.Helper()
	cert := s.Certificate()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: cert.NotAfter.Add(time.Hour)})
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Fatalf("verifying after NotAfter: %v, want an expiry error", err)
	}
	return "tls: failed to verify certificate: " + err.Error()
}

// TestNotServedNamesTheVersion: the v1 APIService in front of a server that
// serves only v1beta1 (upstream's) says so and how to keep that server.
func TestNotServedNamesTheVersion(t *testing.T) {
	c := DecodeAvailable("FailedDiscoveryCheck", "failing or missing response from https://10.96.14.7:443/apis/metrics.k8s.io/v1: bad status from https://10.96.14.7:443/apis/metrics.k8s.io/v1: 404")
	f := c.finding("v1.metrics.k8s.io", "kube-system/metrics-server")
	if want := "the server behind service kube-system/metrics-server does not serve v1 of metrics.k8s.io (404): an older metrics-server, such as upstream's, serves only metrics.k8s.io/v1beta1"; f.Message != want {
		t.Errorf("message %q, want %q", f.Message, want)
	}
	if want := "run kubemetrics' metrics-server behind service kube-system/metrics-server, or, to keep the older server, kubectl delete apiservice v1.metrics.k8s.io"; f.Fix != want {
		t.Errorf("fix %q, want %q", f.Fix, want)
	}
}

func TestDecodeAvailableServiceReasons(t *testing.T) {
	// Reasons and messages as the availability controller formats them.
	tests := []struct {
		reason, message string
		want            CauseKind
		wantFix         string
	}{
		{"ServiceNotFound", `service/metrics-server in "kube-system" is not present`, CauseServiceNotFound, "create service kube-system/metrics-server"},
		{"ServicePortError", `service/metrics-server in "kube-system" is not listening on port 4443`, CauseServicePort, "spec.service.port"},
		{"EndpointsNotFound", `cannot find endpointslices for service/metrics-server in "kube-system"`, CauseNoEndpoints, "kubectl -n kube-system get pods -l k8s-app=metrics-server"},
		{"MissingEndpoints", `endpointslices for service/metrics-server in "kube-system" have no addresses with port name "https"`, CauseNoReadyEndpoints, "node checks"},
		{"ServiceAccessError", `service/metrics-server in "kube-system" cannot be checked due to: etcdserver: request timed out`, CauseAccessError, "kube-apiserver's log"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			got := DecodeAvailable(tt.reason, tt.message)
			if got.Kind != tt.want {
				t.Fatalf("DecodeAvailable(%s) = %s, want %s", tt.reason, got.Kind, tt.want)
			}
			if f := got.finding("v1beta1.metrics.k8s.io", "kube-system/metrics-server"); !strings.Contains(f.Fix, tt.wantFix) {
				t.Errorf("fix = %q, want it to contain %q", f.Fix, tt.wantFix)
			}
		})
	}
}
