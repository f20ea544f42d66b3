package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// connCounter counts the connections a test kubelet accepted.
type connCounter struct {
	mu  sync.Mutex
	new int
}

func (c *connCounter) track(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		c.mu.Lock()
		c.new++
		c.mu.Unlock()
	}
}

func (c *connCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.new
}

// startKubelet serves h over TLS and counts its connections.
func startKubelet(t *testing.T, h http.Handler) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.track
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, cc
}

func TestConnTransportIsUsedAndKeepsOneConnection(t *testing.T) {
	resource := readTestdata(t, "resource-pods.txt")
	k := &kubelet{}
	k.set(resourcePath, answer{200, resource, 0})
	k.set("/big-error", answer{500, strings.Repeat("x", 64<<10), 0})
	srv, conns := startKubelet(t, k)
	c, _ := newTestClient(t, EndpointResource, nil)
	if c.conns == nil {
		t.Fatal("client did not use the connection-keeping transport")
	}
	node := nodeFor(t, srv)
	for range 3 {
		if _, err := c.GetMetrics(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.count(); got != 1 {
		t.Errorf("kubelet accepted %d connections for 3 scrapes, want 1", got)
	}
	if got := c.conns.idleCount(); got != 1 {
		t.Errorf("%d idle connections kept, want 1", got)
	}
	k.mu.Lock()
	auth, encodings := k.auth, k.encodings
	k.mu.Unlock()
	for i, a := range auth {
		if a != "Bearer tok" {
			t.Errorf("kubelet got Authorization %q, want the bearer token", a)
		}
		if encodings[i] != "identity" {
			t.Errorf("kubelet got Accept-Encoding %q, want identity (no compression)", encodings[i])
		}
	}

	// An error body too large to drain: the connection is dropped, not
	// reused with unread bytes on it.
	node.Annotations = map[string]string{ResourcePathAnnotation: "/big-error"}
	if _, err := c.GetMetrics(context.Background(), node); ReasonOf(err) != ReasonHTTPStatus {
		t.Fatalf("got %v, want an http_status error", err)
	}
	if got := c.conns.idleCount(); got != 0 {
		t.Errorf("%d idle connections after an undrained body, want 0", got)
	}
	node.Annotations = nil
	if _, err := c.GetMetrics(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	if got := conns.count(); got != 2 {
		t.Errorf("kubelet accepted %d connections, want 2 (one replaced after the undrained body)", got)
	}
}

// TestConnTransportReplacesConnectionsClosedByKubelet: a kubelet that
// closed an idle connection, or asks to close after answering, costs no
// failed scrape.
func TestConnTransportReplacesConnectionsClosedByKubelet(t *testing.T) {
	resource := readTestdata(t, "resource-pods.txt")
	tests := []struct {
		name      string
		between   func(*httptest.Server)
		closeResp bool
	}{
		{name: "closed while idle", between: func(s *httptest.Server) { s.CloseClientConnections() }},
		{name: "Connection: close", closeResp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := startKubelet(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.closeResp {
					w.Header().Set("Connection", "close")
				}
				_, _ = w.Write([]byte(resource))
			}))
			c, _ := newTestClient(t, EndpointResource, nil)
			node := nodeFor(t, srv)
			for i := range 3 {
				if _, err := c.GetMetrics(context.Background(), node); err != nil {
					t.Fatalf("scrape %d: %v", i, err)
				}
				if tt.between != nil {
					tt.between(srv)
				}
			}
			if got := conns.count(); got != 3 {
				t.Errorf("kubelet accepted %d connections, want 3", got)
			}
		})
	}
}

// TestConnTransportChunkedBody: a body without a length (chunked, as a
// kubelet streams a large answer) is read whole and the connection kept.
func TestConnTransportChunkedBody(t *testing.T) {
	resource := readTestdata(t, "resource-pods.txt")
	srv, conns := startKubelet(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		half := len(resource) / 2
		_, _ = w.Write([]byte(resource[:half]))
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte(resource[half:]))
	}))
	c, _ := newTestClient(t, EndpointResource, nil)
	for range 2 {
		b, err := c.GetMetrics(context.Background(), nodeFor(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Pods) == 0 {
			t.Fatal("no pods decoded from the chunked body")
		}
	}
	if got := conns.count(); got != 1 {
		t.Errorf("kubelet accepted %d connections, want 1", got)
	}
}

// TestConnTransportTimeoutAndCancel: a kubelet that does not answer fails
// the scrape as a timeout (deadline) or a cancellation, in time, and its
// connection is not kept.
func TestConnTransportTimeoutAndCancel(t *testing.T) {
	k := &kubelet{}
	k.set(resourcePath, answer{200, "never sent", time.Minute})
	srv, _ := startKubelet(t, k)
	for _, tt := range []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		reason Reason
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, ReasonTimeout},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, ReasonConnection},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, EndpointResource, nil)
			ctx, cancel := tt.ctx()
			defer cancel()
			began := time.Now()
			_, err := c.GetMetrics(ctx, nodeFor(t, srv))
			if took := time.Since(began); took > 3*time.Second {
				t.Errorf("a stuck kubelet held the scrape %v", took)
			}
			if ReasonOf(err) != tt.reason {
				t.Errorf("reason %s (%v), want %s", ReasonOf(err), err, tt.reason)
			}
			if tt.name == "cancel" && !strings.Contains(err.Error(), "context canceled") {
				t.Errorf("error %q does not say the context was cancelled", err)
			}
			if got := c.conns.idleCount(); got != 0 {
				t.Errorf("%d idle connections after a timeout, want 0", got)
			}
		})
	}
}

// TestConnTransportIdleExpiry: a connection unused for the idle timeout is
// not reused, and put sweeps such connections of other kubelets.
func TestConnTransportIdleExpiry(t *testing.T) {
	resource := readTestdata(t, "resource-pods.txt")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(resource)) })
	srvA, connsA := startKubelet(t, h)
	srvB, _ := startKubelet(t, h)
	c, _ := newTestClient(t, EndpointResource, nil)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	c.conns.now = func() time.Time { return now }
	scrape := func(srv *httptest.Server) {
		t.Helper()
		if _, err := c.GetMetrics(context.Background(), nodeFor(t, srv)); err != nil {
			t.Fatal(err)
		}
	}
	scrape(srvA)
	scrape(srvB)
	now = now.Add(defaultIdleTimeout / 2)
	scrape(srvA)
	if got := connsA.count(); got != 1 {
		t.Fatalf("connections to A: %d, want 1 (reused within the idle timeout)", got)
	}
	now = now.Add(defaultIdleTimeout)
	// A is replaced (idle too long); putting it back sweeps B's.
	scrape(srvA)
	if got := connsA.count(); got != 2 {
		t.Errorf("connections to A: %d, want 2 (expired one replaced)", got)
	}
	if got := c.conns.idleCount(); got != 1 {
		t.Errorf("%d idle connections, want 1 (B's swept)", got)
	}
}

// TestConnTransportClientCertRotation: once the client certificate on
// disk changes, connections made with the old one are not reused.
func TestConnTransportClientCertRotation(t *testing.T) {
	ct := newConnTransport(nil)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	cert := &tls.Certificate{}
	ct.clientCert = func() (*tls.Certificate, error) { return cert, nil }
	ct.checkRotation(now)
	if ct.certGen != 0 {
		t.Fatalf("generation %d after the first look, want 0", ct.certGen)
	}
	cert = &tls.Certificate{}
	ct.checkRotation(now.Add(time.Second))
	if ct.certGen != 0 {
		t.Errorf("looked again within %v", certCheckEvery)
	}
	ct.checkRotation(now.Add(certCheckEvery))
	if ct.certGen != 1 {
		t.Errorf("generation %d after a new certificate, want 1", ct.certGen)
	}
	ct.checkRotation(now.Add(2 * certCheckEvery))
	if ct.certGen != 1 {
		t.Errorf("generation %d with the certificate unchanged, want 1", ct.certGen)
	}
}

// TestConnTransportCAReload: a changed CA file replaces the CA for new
// connections and retires the old ones; an unreadable or empty one keeps
// the CA loaded before.
func TestConnTransportCAReload(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	writePEM(t, caFile, selfSignedDER(t))
	restCfg, _ := RestConfigFor(&rest.Config{}, TLSOptions{CAFile: caFile})
	_, ct, err := newRoundTripper(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	if ct == nil || ct.caFile != caFile {
		t.Fatalf("the CA file is not watched (transport %v)", ct)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	first := ct.tls.RootCAs
	ct.checkRotation(now)
	if ct.certGen != 0 || ct.tls.RootCAs != first {
		t.Fatal("an unchanged CA file was reloaded")
	}
	writePEM(t, caFile, selfSignedDER(t))
	ct.checkRotation(now.Add(time.Second))
	if ct.certGen != 0 {
		t.Error("the CA file was read again within the check interval")
	}
	now = now.Add(certCheckEvery)
	ct.checkRotation(now)
	if ct.certGen != 1 || ct.tls.RootCAs == first {
		t.Fatalf("a new CA was not taken (generation %d)", ct.certGen)
	}
	second := ct.tls.RootCAs
	for _, bad := range []string{"not a certificate", ""} {
		if err := os.WriteFile(caFile, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		now = now.Add(certCheckEvery)
		ct.checkRotation(now)
		if ct.certGen != 1 || ct.tls.RootCAs != second {
			t.Errorf("CA file %q replaced the CA", bad)
		}
	}
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	ct.checkRotation(now.Add(certCheckEvery))
	if ct.certGen != 1 || ct.tls.RootCAs != second {
		t.Error("a missing CA file replaced the CA")
	}
}

func TestAppendRequestRejectsInjection(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{"header value with CRLF", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x\r\nX-Evil: 1") }},
		{"header name with space", func(r *http.Request) { r.Header["Bad Name"] = []string{"v"} }},
		{"host with CRLF", func(r *http.Request) { r.Host = "node\r\nX-Evil: 1" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "https://10.0.0.1:10250/metrics/resource", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.mod(req)
			if b, err := appendRequest(nil, req); err == nil {
				t.Errorf("request rendered: %q", b)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, "https://10.0.0.1:10250/stats/summary?only_cpu_and_memory=true", nil)
	req.Header.Set("Accept", "application/json")
	b, err := appendRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	want := "GET /stats/summary?only_cpu_and_memory=true HTTP/1.1\r\nHost: 10.0.0.1:10250\r\nUser-Agent: Go-http-client/1.1\r\nAccept: application/json\r\n\r\n"
	if string(b) != want {
		t.Errorf("request\n%q\nwant\n%q", b, want)
	}
}

// TestProxyUsesStandardTransport: with a proxy in the environment the
// kubelet client uses the standard transport, which honours it.
func TestProxyUsesStandardTransport(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	restCfg, _ := RestConfigFor(&rest.Config{BearerToken: "tok"}, TLSOptions{Insecure: true})
	_, ct, err := newRoundTripper(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	if ct != nil {
		t.Error("the connection-keeping transport was chosen despite a proxy")
	}
}

// TestConnTransportHostileHead: a kubelet sending an endless status line
// or header fails the scrape after a bounded read, with a short error.
func TestConnTransportHostileHead(t *testing.T) {
	for _, tt := range []struct {
		name, head string
	}{
		{"endless status line", "HTTP/1.1 200 " + strings.Repeat("A", 1<<20)},
		{"endless header", "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("a", 1<<20)},
		{"garbage", strings.Repeat("\x00garbage", 1<<17)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := startKubelet(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				_, _ = buf.WriteString(tt.head)
				_ = buf.Flush()
			}))
			c, _ := newTestClient(t, EndpointResource, nil)
			_, err := c.GetMetrics(context.Background(), nodeFor(t, srv))
			if err == nil {
				t.Fatal("a hostile answer was taken")
			}
			if len(err.Error()) > 600 {
				t.Errorf("error text is %d bytes long", len(err.Error()))
			}
			if ReasonOf(err) != ReasonConnection {
				t.Errorf("reason %s, want connection (%v)", ReasonOf(err), err)
			}
			if !errors.Is(err, errHeadTooLarge) {
				t.Errorf("error %v, want the head size limit", err)
			}
		})
	}
}

// idleCount is how many connections t keeps.
func (t *connTransport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}
