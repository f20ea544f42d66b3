package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
)

// selfMetrics reads our server's /metrics directly, as the admin.
func selfMetrics(t *testing.T) string {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(cluster.PKI.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(cluster.PKI.Path(pki.Admin+".crt"), cluster.PKI.Path(pki.Admin+".key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Get("https://127.0.0.1:" + strconv.Itoa(serverPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	return string(body)
}

// TestFaultyKubeletsDoNotHurtOthers turns two healthy nodes bad (a garbage
// body, a serving certificate for another name): their failures are
// counted by reason, their last good metrics are still served for the
// staleness bound, and every other node goes on.
func TestFaultyKubeletsDoNotHurtOthers(t *testing.T) {
	names := sim.NodeNames()
	garbage, badTLS := names[1], names[5]
	mc := metricsClient(t)
	ctx := context.Background()
	listed := func() (map[string]bool, error) {
		nodes, err := mc.MetricsV1().NodeMetricses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, n := range nodes.Items {
			out[n.Name] = true
		}
		return out, nil
	}
	waitFor(t, 3*resolution, func() error {
		got, err := listed()
		if err != nil {
			return err
		}
		if !got[garbage] || !got[badTLS] {
			return fmt.Errorf("nodes %s and %s not served yet", garbage, badTLS)
		}
		return nil
	})
	for node, mode := range map[string]fleet.Mode{garbage: fleet.ModeGarbage, badTLS: fleet.ModeWrongTLSName} {
		if err := sim.SetMode(node, mode); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		_ = sim.SetMode(garbage, fleet.ModeNormal)
		_ = sim.SetMode(badTLS, fleet.ModeNormal)
	}()
	// Their last success was at most one resolution ago and the staleness
	// bound is two resolutions and the request timeout: for the next 12s
	// every node, the failing ones included, must stay served.
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		got, err := listed()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !got[n] {
				t.Fatalf("node %s not served right after two nodes went bad", n)
			}
		}
	}
	waitFor(t, 2*resolution+10*time.Second, func() error {
		m := selfMetrics(t)
		for _, want := range []string{
			fmt.Sprintf(`metrics_server_kubelet_scrape_failures_total{node=%q,reason="decode"}`, garbage),
			fmt.Sprintf(`metrics_server_kubelet_scrape_failures_total{node=%q,reason="tls"}`, badTLS),
		} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		return nil
	})
}
