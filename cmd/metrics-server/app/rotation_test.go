package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// TestServingCertRotatesUnderLoad: the serving certificate given with
// --tls-cert-file and --tls-private-key-file is replaced on disk the way
// kubelet and cert-manager replace it (a new file renamed over the old one)
// while four clients keep calling the server, two on a new TLS connection per
// request and two on kept-alive connections, alternating the anonymous
// /readyz and an authorized metrics API call. Every request must succeed, new
// handshakes must present the new certificate within 90s (k8s.io/apiserver
// re-reads the files on an fsnotify event, or at its one-minute resync), and
// none may present the old one after that.
func TestServingCertRotatesUnderLoad(t *testing.T) {
	s := startSecureServer(t)
	certFile := s.files.Path(pki.MetricsServing + ".crt")
	keyFile := s.files.Path(pki.MetricsServing + ".key")
	oldSerial := servingSerial(t, certFile)

	ca, err := pki.LoadCA(s.files.Path(pki.ClusterCA+".crt"), s.files.Path(pki.ClusterCA+".key"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	const (
		maxRequestsPerClient = 20_000
		pause                = 10 * time.Millisecond
		reloadLimit          = 90 * time.Second
		afterReload          = 2 * time.Second
	)
	l := &rotationLoad{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, keepAlive := range []bool{false, false, true, true} {
		tr := &http.Transport{
			DisableKeepAlives: !keepAlive,
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"},
		}
		client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for n := 0; n < maxRequestsPerClient; n++ {
				select {
				case <-stop:
					return
				default:
				}
				path, token := "/readyz", ""
				if n%2 == 1 {
					path, token = "/apis/metrics.k8s.io/v1beta1/nodes", aliceToken
				}
				serial, err := rotationGet(client, "https://"+s.addr+path, token)
				l.record(fmt.Sprintf("client %d (keep-alive %v) request %d %s", i, keepAlive, n, path), !keepAlive, serial, err)
				time.Sleep(pause)
			}
		}()
	}

	// Load on the first certificate before the rotation.
	time.Sleep(time.Second)
	kp, err := ca.Issue(pki.Request{CommonName: "metrics-server", Server: true,
		DNSNames: []string{"localhost", pki.MetricsServerDNS}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	newSerial := kp.Cert.SerialNumber.String()
	if newSerial == oldSerial {
		t.Fatalf("the new certificate repeats the serial %s", oldSerial)
	}
	key, err := pki.KeyPEM(kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	replaceFile(t, keyFile, key, 0o600)
	replaceFile(t, certFile, pki.CertPEM(kp.Cert), 0o644)

	deadline := rotated.Add(reloadLimit)
	for !l.fresh(newSerial) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	reloaded := time.Since(rotated)
	l.startAfter(newSerial)
	time.Sleep(afterReload)
	close(stop)
	wg.Wait()

	sum := l.summary()
	t.Logf("new handshakes presented the new certificate %v after the rename; %d requests, %d on new connections (%d before the reload presented the old certificate)",
		reloaded.Round(time.Millisecond), sum.requests, sum.freshRequests, sum.freshOld)
	if !l.fresh(newSerial) {
		t.Fatalf("no new handshake presented the new certificate (serial %s) within %v of replacing the files", newSerial, reloadLimit)
	}
	for _, f := range sum.failures {
		t.Errorf("failed during the rotation: %s", f)
	}
	if sum.freshOld == 0 {
		t.Errorf("no new connection presented the old certificate (serial %s): the load did not cover the time before the reload", oldSerial)
	}
	if sum.freshAfter == 0 {
		t.Errorf("no new connection was made in the %v after the reload", afterReload)
	}
	for _, stale := range sum.staleAfter {
		t.Errorf("after the reload a new handshake presented serial %s, not %s: %s", stale.serial, newSerial, stale.what)
	}
}

// rotationGet makes one GET and returns the serial of the certificate the
// server presented; any status but 200 is an error.
func rotationGet(client *http.Client, url, token string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return "", fmt.Errorf("no server certificate on the response")
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
}

// rotationLoad records the outcome of every request of the rotation test.
// Its methods lock.
type rotationLoad struct {
	mu            sync.Mutex
	requests      int
	freshRequests int
	failures      []string
	freshSerials  map[string]int // serial presented on new connections -> count
	after         string         // the new serial once new handshakes present it, else ""
	freshAfter    int
	staleAfter    []staleHandshake
}

type staleHandshake struct{ serial, what string }

type rotationSummary struct {
	requests, freshRequests, freshOld, freshAfter int
	failures                                      []string
	staleAfter                                    []staleHandshake
}

// record notes one request: what it was, whether it opened a new
// connection, the serial presented and its error.
func (l *rotationLoad) record(what string, fresh bool, serial string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if err != nil {
		l.failures = append(l.failures, fmt.Sprintf("%s: %v", what, err))
		return
	}
	if !fresh {
		return
	}
	l.freshRequests++
	if l.freshSerials == nil {
		l.freshSerials = map[string]int{}
	}
	if l.after != "" {
		l.freshAfter++
		if serial != l.after {
			l.staleAfter = append(l.staleAfter, staleHandshake{serial, what})
		}
		return
	}
	l.freshSerials[serial]++
}

// fresh reports whether a new connection has presented serial.
func (l *rotationLoad) fresh(serial string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.freshSerials[serial] > 0
}

// startAfter marks the reload: from now on every new handshake must present
// serial.
func (l *rotationLoad) startAfter(serial string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.after = serial
}

func (l *rotationLoad) summary() rotationSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := 0
	for serial, n := range l.freshSerials {
		if serial != l.after {
			old += n
		}
	}
	return rotationSummary{
		requests: l.requests, freshRequests: l.freshRequests, freshOld: old, freshAfter: l.freshAfter,
		failures: l.failures, staleAfter: l.staleAfter,
	}
}

// servingSerial reads the serial of the certificate in file.
func servingSerial(t *testing.T, file string) string {
	t.Helper()
	c, err := tls.LoadX509KeyPair(file, file[:len(file)-len(".crt")]+".key")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

// replaceFile writes data beside path and renames it over path, so a
// reader sees the old content or the new, never part of either.
func replaceFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}
