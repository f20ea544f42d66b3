package app

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
)

// runServer starts the real server (options, informers, scraper, kubelet
// client, store, API) with opts on a free loopback port, kube and meta as
// its API clients and kubeletToken as its kubelet credential. It sets what
// every in-process test shares: kubelets reached at the port and InternalIP
// of their Node status over TLS that is not verified, a one-second
// resolution and an 800ms kubelet timeout; the caller sets serving
// certificates and authentication. opts must pass Validate but for the
// resolution, shortened for tests.
//
// It returns the server's address and stop, which cancels the server and
// waits for it (30s at most); stop may be called more than once and runs
// at cleanup.
func runServer(t *testing.T, opts *options.Options, kubeletToken string, kube kubernetes.Interface, meta metadata.Interface) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	opts.SecureServing.Listener = ln
	opts.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	opts.Kubelet.InsecureTLS = true
	opts.Kubelet.UseNodeStatusPort = true
	opts.Kubelet.PreferredAddressTypes = []string{"InternalIP"}
	opts.MetricResolution = time.Second
	opts.Kubelet.RequestTimeout = 800 * time.Millisecond
	for _, err := range opts.Validate() {
		if !strings.Contains(err.Error(), "--metric-resolution") {
			t.Fatalf("options: %v", err)
		}
	}
	cfg, err := opts.ServerConfigWith(&rest.Config{BearerToken: kubeletToken}, kube, meta)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("server stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("server did not stop within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
