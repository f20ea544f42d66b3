package kubelet

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestHostileNodeAddressesReachNoOtherHost: a node address that smuggles
// a scheme, a port, user info or a path in front of another host's
// address does not make the client talk to that host.
func TestHostileNodeAddressesReachNoOtherHost(t *testing.T) {
	by := startBystander(t, false)
	host, port, err := net.SplitHostPort(by.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hp := net.JoinHostPort(host, port)
	p, _ := strconv.Atoi(port)
	for _, tr := range []struct {
		name     string
		standard func(*rest.Config)
	}{
		{"connTransport", nil},
		{"standard transport", func(c *rest.Config) { c.Dial = (&net.Dialer{}).DialContext }},
	} {
		for _, addr := range []string{
			"http://" + hp,
			"https://" + hp,
			hp,
			"tok@" + hp,
			hp + "/metrics/resource#",
			hp + "?",
			host + "\r\nHost: " + hp,
		} {
			t.Run(tr.name+"/"+addr, func(t *testing.T) {
				restCfg, scheme := RestConfigFor(&rest.Config{BearerToken: "tok"}, TLSOptions{Insecure: true})
				if tr.standard != nil {
					tr.standard(restCfg)
				}
				c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, DefaultPort: p + 1, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointAuto})
				if err != nil {
					t.Fatal(err)
				}
				node := &corev1.Node{
					ObjectMeta: metav1.ObjectMeta{Name: "worker-1"},
					Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}},
				}
				_, err = c.GetMetrics(context.Background(), node)
				if err == nil {
					t.Error("a hostile address was scraped")
				}
				if conns, auth, _ := by.contacted(); conns != 0 {
					t.Errorf("another host was contacted %d times (Authorization %q); error %v", conns, auth, err)
				}
			})
		}
	}
}

// TestPlainHTTPCarriesNoCredentials: a client asked to talk plain HTTP is
// refused when its configuration holds any credential (they would cross
// the network unencrypted), and the one --deprecated-kubelet-completely-insecure
// builds sends none, even from a server whose own configuration has a
// token and a client certificate.
func TestPlainHTTPCarriesNoCredentials(t *testing.T) {
	for _, tt := range []struct {
		name    string
		rest    rest.Config
		scheme  string
		wantErr string // "" when the client is built
	}{
		{name: "bearer token", rest: rest.Config{BearerToken: "tok"}, scheme: "http", wantErr: "bearer token"},
		{name: "token file", rest: rest.Config{BearerTokenFile: "/var/run/secrets/token"}, scheme: "http", wantErr: "bearer token"},
		{name: "basic auth", rest: rest.Config{Username: "admin", Password: "pw"}, scheme: "http", wantErr: "basic auth"},
		{name: "client certificate", rest: rest.Config{TLSClientConfig: rest.TLSClientConfig{CertFile: "/c.crt", KeyFile: "/c.key"}}, scheme: "http", wantErr: "client certificate"},
		{name: "exec plugin", rest: rest.Config{ExecProvider: &clientcmdapi.ExecConfig{Command: "get-token", APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}}, scheme: "http", wantErr: "exec credential plugin"},
		{name: "anonymous over plain HTTP", scheme: "http"},
		{name: "token over HTTPS", rest: rest.Config{BearerToken: "tok"}, scheme: "https"},
		{name: "unknown scheme", scheme: "ftp", wantErr: `scheme "ftp"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(Config{Rest: &tt.rest, Scheme: tt.scheme})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("NewClient: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("NewClient built a plain HTTP client with a %s", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not name %q", err, tt.wantErr)
			}
		})
	}

	// End to end: the flag's configuration against a plain HTTP kubelet.
	k := &kubelet{}
	k.set(summaryPath, answer{200, readTestdata(t, "summary-pods.json"), 0})
	srv := httptest.NewServer(k)
	defer srv.Close()
	certFile, keyFile := clientCertFiles(t)
	base := &rest.Config{BearerToken: "tok", TLSClientConfig: rest.TLSClientConfig{CertFile: certFile, KeyFile: keyFile}}
	restCfg, scheme := RestConfigFor(base, TLSOptions{CompletelyInsecure: true})
	c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointSummary})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetMetrics(context.Background(), nodeFor(t, srv)); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.auth) != 1 || k.auth[0] != "" {
		t.Errorf("the plain HTTP kubelet got Authorization %q, want none", k.auth)
	}
}

// tunnelProxy is an HTTP CONNECT proxy on 127.0.0.2 that records every
// byte it forwards in either direction.
type tunnelProxy struct {
	srv *httptest.Server

	mu       sync.Mutex
	connects []string // CONNECT targets
	others   int      // requests other than CONNECT
	seen     bytes.Buffer
	open     []net.Conn
}

func startTunnelProxy(t *testing.T) *tunnelProxy {
	t.Helper()
	p := &tunnelProxy{}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on a second loopback address: %v", err)
	}
	_ = p.srv.Listener.Close()
	p.srv.Listener = ln
	p.srv.Start()
	t.Cleanup(func() {
		p.srv.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.open {
			_ = c.Close()
		}
	})
	return p
}

func (p *tunnelProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		p.mu.Lock()
		p.others++
		p.mu.Unlock()
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.connects = append(p.connects, r.Host)
	p.mu.Unlock()
	upstream, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		_ = upstream.Close()
		return
	}
	p.mu.Lock()
	p.open = append(p.open, client, upstream)
	p.mu.Unlock()
	_, _ = client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	go p.pipe(upstream, io.MultiReader(buf.Reader, client))
	go p.pipe(client, upstream)
}

// pipe copies src to dst, recording the bytes, until either side closes.
func (p *tunnelProxy) pipe(dst io.Writer, src io.Reader) {
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 {
			p.mu.Lock()
			p.seen.Write(b[:n])
			p.mu.Unlock()
			if _, werr := dst.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if c, ok := dst.(net.Conn); ok {
				_ = c.Close()
			}
			return
		}
	}
}

// TestProxyCarriesCredentialsOnlyInsideTLS: through an HTTP proxy the
// client opens a CONNECT tunnel to the node's address and speaks TLS to
// the kubelet inside it: the proxy never sees the token.
func TestProxyCarriesCredentialsOnlyInsideTLS(t *testing.T) {
	const token = "tok-4f1c9e2b7a-kubelet-secret"
	var seenAuth []string
	var mu sync.Mutex
	resource := readTestdata(t, "resource-pods.txt")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenAuth = append(seenAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(resource))
	}))
	defer srv.Close()
	proxy := startTunnelProxy(t)
	proxyURL, err := url.Parse(proxy.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	restCfg, scheme := RestConfigFor(&rest.Config{BearerToken: token}, TLSOptions{Insecure: true})
	restCfg.Proxy = http.ProxyURL(proxyURL)
	c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointResource})
	if err != nil {
		t.Fatal(err)
	}
	if c.conns != nil {
		t.Fatal("the connection-keeping transport was chosen despite a proxy")
	}
	node := nodeFor(t, srv)
	for range 2 {
		if _, err := c.GetMetrics(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}
	c.http.CloseIdleConnections()

	mu.Lock()
	defer mu.Unlock()
	if len(seenAuth) != 2 || seenAuth[0] != "Bearer "+token {
		t.Fatalf("the kubelet got Authorization %q, want the token twice (through the proxy)", seenAuth)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	want := srv.Listener.Addr().String()
	if len(proxy.connects) == 0 || proxy.others != 0 {
		t.Fatalf("proxy saw CONNECTs %q and %d other requests, want only CONNECTs", proxy.connects, proxy.others)
	}
	for _, target := range proxy.connects {
		if target != want {
			t.Errorf("proxy asked to connect to %s, want the node's %s", target, want)
		}
	}
	if proxy.seen.Len() == 0 {
		t.Fatal("the proxy forwarded nothing")
	}
	if bytes.Contains(proxy.seen.Bytes(), []byte(token)) {
		t.Error("the token crossed the proxy in clear text")
	}
	if bytes.Contains(proxy.seen.Bytes(), []byte("node_cpu_usage_seconds_total")) {
		t.Error("the kubelet's answer crossed the proxy in clear text")
	}
}
