package kubelet

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
)

// kubelet is a scripted kubelet: per path, a status and a body.
type kubelet struct {
	mu      sync.Mutex
	answers map[string]answer
	hits    map[string]int
	auth    []string
	protos  []string
	// encodings are the requests' Accept-Encoding headers.
	encodings []string
}

type answer struct {
	status int
	body   string
	delay  time.Duration
}

func (k *kubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	if k.hits == nil {
		k.hits = map[string]int{}
	}
	k.hits[r.URL.Path]++
	k.auth = append(k.auth, r.Header.Get("Authorization"))
	k.protos = append(k.protos, r.Proto)
	k.encodings = append(k.encodings, r.Header.Get("Accept-Encoding"))
	a, ok := k.answers[r.URL.Path]
	k.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func (k *kubelet) set(path string, a answer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.answers == nil {
		k.answers = map[string]answer{}
	}
	k.answers[path] = a
}

func (k *kubelet) count(path string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hits[path]
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nodeFor returns a node whose InternalIP and kubelet port point at srv.
func nodeFor(t testing.TB, srv *httptest.Server) *corev1.Node {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1"},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(p)}},
		},
	}
}

func newTestClient(t testing.TB, endpoint Endpoint, mutate func(*Config)) (*Client, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	restCfg, scheme := RestConfigFor(&rest.Config{BearerToken: "tok"}, TLSOptions{Insecure: true})
	cfg := Config{
		Rest:              restCfg,
		Scheme:            scheme,
		UseNodeStatusPort: true,
		AddressTypes:      []corev1.NodeAddressType{corev1.NodeInternalIP},
		Endpoint:          endpoint,
		RequestTimeout:    5 * time.Second,
		Clock:             clk,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func TestGetMetricsEndpointsAndErrors(t *testing.T) {
	summary := readTestdata(t, "summary-pods.json")
	resource := readTestdata(t, "resource-pods.txt")
	tests := []struct {
		name       string
		endpoint   Endpoint
		summary    *answer
		resource   *answer
		maxBytes   int64
		wantPods   int
		wantReason Reason
		wantInErr  string
	}{
		{name: "summary", endpoint: EndpointSummary, summary: &answer{200, summary, 0}, wantPods: 4},
		{name: "resource", endpoint: EndpointResource, resource: &answer{200, resource, 0}, wantPods: 4},
		{name: "auto uses resource", endpoint: EndpointAuto, resource: &answer{200, resource, 0}, summary: &answer{500, "no", 0}, wantPods: 4},
		{name: "auto falls back on 404", endpoint: EndpointAuto, summary: &answer{200, summary, 0}, wantPods: 4},
		{name: "auto falls back on 500", endpoint: EndpointAuto, resource: &answer{500, "internal error", 0}, summary: &answer{200, summary, 0}, wantPods: 4},
		{name: "auto falls back on 403", endpoint: EndpointAuto, resource: &answer{403, "forbidden: nodes/metrics", 0}, summary: &answer{200, summary, 0}, wantPods: 4},
		{name: "auto falls back on garbage", endpoint: EndpointAuto, resource: &answer{200, "<html>oops</html>", 0}, summary: &answer{200, summary, 0}, wantPods: 4},
		{name: "both fail: both errors kept, the summary's reason", endpoint: EndpointAuto, resource: &answer{500, "x", 0}, summary: &answer{503, "busy", 0}, wantReason: ReasonHTTPStatus, wantInErr: "/stats/summary: http status 503: busy"},
		{name: "resource 404 in resource mode", endpoint: EndpointResource, wantReason: ReasonHTTPStatus, wantInErr: "http status 404"},
		{name: "summary garbage in summary mode", endpoint: EndpointSummary, summary: &answer{200, "{{{", 0}, wantReason: ReasonDecode, wantInErr: `scraping node "worker-1" at 127.0.0.1:`},
		{name: "too large", endpoint: EndpointSummary, summary: &answer{200, summary, 0}, maxBytes: 1024, wantReason: ReasonTooLarge, wantInErr: "larger than 1024 bytes"},
		{name: "exactly at the limit is fine", endpoint: EndpointSummary, summary: &answer{200, summary, 0}, maxBytes: int64(len(summary)), wantPods: 4},
		{name: "slow kubelet times out", endpoint: EndpointSummary, summary: &answer{200, summary, 3 * time.Second}, wantReason: ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &kubelet{}
			if tt.summary != nil {
				k.set(summaryPath, *tt.summary)
			}
			if tt.resource != nil {
				k.set(resourcePath, *tt.resource)
			}
			srv := httptest.NewTLSServer(k)
			defer srv.Close()
			c, _ := newTestClient(t, tt.endpoint, func(c *Config) { c.MaxResponseBytes = tt.maxBytes })
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b, err := c.GetMetrics(ctx, nodeFor(t, srv))
			if tt.wantReason != "" {
				if err == nil {
					t.Fatalf("got a batch, want an error with reason %s", tt.wantReason)
				}
				if got := ReasonOf(err); got != tt.wantReason {
					t.Errorf("reason = %s, want %s (err: %v)", got, tt.wantReason, err)
				}
				if !strings.Contains(err.Error(), tt.wantInErr) {
					t.Errorf("err = %q, want it to contain %q", err, tt.wantInErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Pods) != tt.wantPods || b.Node != "worker-1" {
				t.Errorf("batch of node %q with %d pods, want worker-1 with %d", b.Node, len(b.Pods), tt.wantPods)
			}
			for _, a := range k.auth {
				if a != "Bearer tok" {
					t.Errorf("kubelet saw Authorization %q, want the server's bearer token", a)
				}
			}
		})
	}
}

func TestAutoFallbackIsRememberedAndRetried(t *testing.T) {
	k := &kubelet{}
	k.set(resourcePath, answer{500, "broken", 0})
	k.set(summaryPath, answer{200, readTestdata(t, "summary-pods.json"), 0})
	srv := httptest.NewTLSServer(k)
	defer srv.Close()
	c, clk := newTestClient(t, EndpointAuto, func(c *Config) { c.RetryPreferredAfter = 10 * time.Minute })
	node := nodeFor(t, srv)
	get := func() {
		t.Helper()
		if _, err := c.GetMetrics(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		get()
		clk.Step(time.Minute)
	}
	if got := k.count(resourcePath); got != 1 {
		t.Errorf("resource asked %d times in 3 scrapes, want once, then the fallback remembered", got)
	}
	if got := k.count(summaryPath); got != 3 {
		t.Errorf("summary asked %d times, want 3", got)
	}

	// After the retry period /metrics/resource is tried again; now it works.
	k.set(resourcePath, answer{200, readTestdata(t, "resource-pods.txt"), 0})
	clk.Step(10 * time.Minute)
	get()
	get()
	if got := k.count(resourcePath); got != 3 {
		t.Errorf("resource asked %d times, want 3 (retried after the period, then kept)", got)
	}
	if got := k.count(summaryPath); got != 3 {
		t.Errorf("summary asked %d times, want still 3", got)
	}

	// Forget drops the memory: a failing /metrics/resource is asked again at once.
	k.set(resourcePath, answer{500, "broken", 0})
	get()
	c.Forget(node.Name)
	get()
	if got := k.count(resourcePath); got != 5 {
		t.Errorf("resource asked %d times, want 5", got)
	}
}

func TestConnectionErrorsDoNotFallBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	c, _ := newTestClient(t, EndpointAuto, nil)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "gone"},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(addr.Port)}},
		},
	}
	_, err = c.GetMetrics(context.Background(), node)
	if got := ReasonOf(err); got != ReasonConnection {
		t.Fatalf("reason = %s, want connection (err: %v)", got, err)
	}
	var se *ScrapeError
	if !errors.As(err, &se) || se.Endpoint != resourcePath {
		t.Errorf("error %v should be about %s only: a down node is not retried on the other endpoint", err, resourcePath)
	}
}

func TestTLSVerification(t *testing.T) {
	k := &kubelet{}
	k.set(summaryPath, answer{200, readTestdata(t, "summary-no-pods.json"), 0})
	srv := httptest.NewTLSServer(k)
	defer srv.Close()
	dir := t.TempDir()
	goodCA := filepath.Join(dir, "good.crt")
	writePEM(t, goodCA, srv.Certificate().Raw)
	// A CA that signed nothing this kubelet serves.
	badCA := filepath.Join(dir, "bad.crt")
	writePEM(t, badCA, selfSignedDER(t))

	tests := []struct {
		name       string
		opts       TLSOptions
		wantReason Reason
	}{
		{name: "verified with the right CA", opts: TLSOptions{CAFile: goodCA}},
		{name: "refused with another CA", opts: TLSOptions{CAFile: badCA}, wantReason: ReasonTLS},
		{name: "insecure skips verification", opts: TLSOptions{Insecure: true}},
		{name: "plain HTTP against a TLS kubelet fails", opts: TLSOptions{CompletelyInsecure: true}, wantReason: ReasonHTTPStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restCfg, scheme := RestConfigFor(&rest.Config{BearerToken: "tok"}, tt.opts)
			c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointSummary})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetMetrics(context.Background(), nodeFor(t, srv))
			if tt.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := ReasonOf(err); got != tt.wantReason {
				t.Errorf("reason = %s, want %s (err: %v)", got, tt.wantReason, err)
			}
		})
	}
}

func TestResourcePathAnnotation(t *testing.T) {
	k := &kubelet{}
	k.set("/metrics/emulated", answer{200, readTestdata(t, "resource-no-pods.txt"), 0})
	srv := httptest.NewTLSServer(k)
	defer srv.Close()
	c, _ := newTestClient(t, EndpointResource, nil)
	node := nodeFor(t, srv)
	node.Annotations = map[string]string{ResourcePathAnnotation: "/metrics/emulated"}
	b, err := c.GetMetrics(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	if b.NodePoint.Memory != 524288000 {
		t.Errorf("node memory %d, want 524288000 from the annotated path", b.NodePoint.Memory)
	}
}

func TestNoAddress(t *testing.T) {
	c, _ := newTestClient(t, EndpointAuto, nil)
	_, err := c.GetMetrics(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "lonely"}})
	if got := ReasonOf(err); got != ReasonNoAddress {
		t.Fatalf("reason = %s, want no_address (err: %v)", got, err)
	}
	if !strings.Contains(err.Error(), `node "lonely"`) || !strings.Contains(err.Error(), "--kubelet-preferred-address-types") {
		t.Errorf("error %q should name the node and the flag to adjust", err)
	}
	if ReasonOf(errors.New("other")) != ReasonOther {
		t.Errorf("ReasonOf a foreign error is not %q", ReasonOther)
	}
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKubeletsAreAskedOverHTTP1: even a kubelet offering HTTP/2 is asked
// over HTTP/1.1, whose idle connections are smaller.
func TestKubeletsAreAskedOverHTTP1(t *testing.T) {
	k := &kubelet{}
	k.set(resourcePath, answer{200, readTestdata(t, "resource-pods.txt"), 0})
	srv := httptest.NewUnstartedServer(k)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c, _ := newTestClient(t, EndpointResource, nil)
	for range 2 {
		if _, err := c.GetMetrics(context.Background(), nodeFor(t, srv)); err != nil {
			t.Fatal(err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.protos) != 2 {
		t.Fatalf("kubelet saw %d requests, want 2", len(k.protos))
	}
	for _, p := range k.protos {
		if p != "HTTP/1.1" {
			t.Errorf("kubelet asked over %s, want HTTP/1.1", p)
		}
	}
}

// TestFallbackMemoryOfDeletedNodesIsBounded: a node deleted while its
// request was in flight falls back after Forget ran, so Forget cannot
// drop its entry; expired entries must still go, or the map grows with
// node churn.
func TestFallbackMemoryOfDeletedNodesIsBounded(t *testing.T) {
	c, clk := newTestClient(t, EndpointAuto, nil)
	cause := &ScrapeError{Node: "x", Reason: ReasonHTTPStatus, Err: errors.New("404")}
	for round := range 20 {
		for i := range 100 {
			// Each round's nodes are new names: the old ones were deleted.
			c.setFallback(context.Background(), fmt.Sprintf("churned-%d-%d", round, i), cause)
		}
		clk.Step(11 * time.Minute) // past RetryPreferredAfter
	}
	c.mu.Lock()
	n := len(c.fellBack)
	c.mu.Unlock()
	if n > 2*100+minSweep {
		t.Errorf("fallback map holds %d entries after 2,000 churned nodes, want at most %d", n, 2*100+minSweep)
	}
}
