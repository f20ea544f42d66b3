package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// bystander is a server at an address other than the node's. It records
// every connection and request it gets: kubelet credentials must never
// reach it.
type bystander struct {
	srv *httptest.Server

	mu    sync.Mutex
	conns int
	auth  []string
	certs int // requests that came with a client certificate
}

// startBystander listens on 127.0.0.2 (another loopback address than the
// nodes' 127.0.0.1), over TLS asking for client certificates when tlsOn,
// else over plain HTTP.
func startBystander(t *testing.T, tlsOn bool) *bystander {
	t.Helper()
	b := &bystander{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.auth = append(b.auth, r.Header.Get("Authorization"))
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			b.certs++
		}
		b.mu.Unlock()
		_, _ = w.Write([]byte(readTestdata(t, "resource-pods.txt")))
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on a second loopback address: %v", err)
	}
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
		}
	}
	if tlsOn {
		srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	b.srv = srv
	return b
}

func (b *bystander) contacted() (conns int, auth []string, certs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns, append([]string(nil), b.auth...), b.certs
}

// redirectingKubelet answers every path but /moved with status and a
// Location of target+path; it records what it was sent, and serves
// /moved itself (a redirect to the node's own address).
type redirectingKubelet struct {
	status int
	target string // scheme://host:port
	body   string // what /moved serves

	mu    sync.Mutex
	auth  []string
	certs int
	moved int
}

func (k *redirectingKubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.auth = append(k.auth, r.Header.Get("Authorization"))
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		k.certs++
	}
	if r.URL.Path == "/moved" {
		k.moved++
		k.mu.Unlock()
		_, _ = w.Write([]byte(k.body))
		return
	}
	k.mu.Unlock()
	w.Header().Set("Location", k.target+"/moved")
	w.WriteHeader(k.status)
}

// clientCertFiles writes a client certificate and its key for the
// kubelet client and returns their paths.
func clientCertFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	der, key := selfSigned(t)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	writePEM(t, certFile, der)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestRedirectsAreRefused: a kubelet's redirect is never followed, to
// another host over HTTPS or plain HTTP nor to the node itself, with
// either transport and either kind of credentials. It is an error for the
// node naming the status and the Location, and the credentials reach only
// the node's address.
func TestRedirectsAreRefused(t *testing.T) {
	certFile, keyFile := clientCertFiles(t)
	execPlugin := execTokenPlugin(t, "exec-tok")
	type target struct {
		name string
		url  func(t *testing.T) (string, *bystander)
	}
	targets := []target{
		{"another host over plain HTTP", func(t *testing.T) (string, *bystander) {
			b := startBystander(t, false)
			return b.srv.URL, b
		}},
		{"another host over HTTPS", func(t *testing.T) (string, *bystander) {
			b := startBystander(t, true)
			return b.srv.URL, b
		}},
		{"the node itself", func(t *testing.T) (string, *bystander) { return "", nil }},
	}
	transports := []struct {
		name string
		// standard sets up what makes the client use the standard transport.
		standard func(*rest.Config)
	}{
		{"connTransport", nil},
		{"standard transport (custom dialer)", func(c *rest.Config) { c.Dial = (&net.Dialer{}).DialContext }},
	}
	auths := []struct {
		name string
		rest *rest.Config
		opts TLSOptions
	}{
		{"bearer token", &rest.Config{BearerToken: "tok"}, TLSOptions{Insecure: true}},
		{"client certificate", &rest.Config{}, TLSOptions{Insecure: true, CertFile: certFile, KeyFile: keyFile}},
		{"exec plugin token", &rest.Config{ExecProvider: execPlugin}, TLSOptions{Insecure: true}},
	}
	statuses := []int{http.StatusFound, http.StatusMovedPermanently, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
	i := 0
	for _, tg := range targets {
		for _, tr := range transports {
			for _, au := range auths {
				status := statuses[i%len(statuses)]
				i++
				t.Run(tg.name+"/"+tr.name+"/"+au.name+"/"+strconv.Itoa(status), func(t *testing.T) {
					targetURL, by := tg.url(t)
					k := &redirectingKubelet{status: status, target: targetURL, body: readTestdata(t, "resource-pods.txt")}
					srv := httptest.NewUnstartedServer(k)
					srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
					srv.StartTLS()
					defer srv.Close()
					if targetURL == "" {
						k.target = srv.URL
					}

					restCfg, scheme := RestConfigFor(au.rest, au.opts)
					if tr.standard != nil {
						tr.standard(restCfg)
					}
					c, err := NewClient(Config{Rest: restCfg, Scheme: scheme, UseNodeStatusPort: true, AddressTypes: []corev1.NodeAddressType{corev1.NodeInternalIP}, Endpoint: EndpointResource})
					if err != nil {
						t.Fatal(err)
					}
					if (c.conns == nil) != (tr.standard != nil) {
						t.Fatalf("transport chosen: connTransport=%v, want %v", c.conns != nil, tr.standard == nil)
					}
					_, err = c.GetMetrics(context.Background(), nodeFor(t, srv))
					t.Logf("error: %v", err)
					switch {
					case err == nil:
						t.Error("the redirect was followed: got a batch")
					case ReasonOf(err) != ReasonRedirect:
						t.Errorf("reason %s, want %s (err: %v)", ReasonOf(err), ReasonRedirect, err)
					}
					for _, want := range []string{`node "worker-1"`, strconv.Itoa(status), k.target + "/moved", "refused"} {
						if err != nil && !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not name %q", err, want)
						}
					}

					k.mu.Lock()
					moved, nodeAuth, nodeCerts := k.moved, k.auth, k.certs
					k.mu.Unlock()
					if moved != 0 {
						t.Errorf("the redirect to the node's own /moved was followed %d times", moved)
					}
					if len(nodeAuth) != 1+moved {
						t.Fatalf("the node recorded %d requests, want %d", len(nodeAuth), 1+moved)
					}
					// The credentials did reach the node: the check below is not vacuous.
					switch au.name {
					case "bearer token":
						if nodeAuth[0] != "Bearer tok" {
							t.Errorf("the node got Authorization %q, want the bearer token", nodeAuth[0])
						}
					case "exec plugin token":
						if nodeAuth[0] != "Bearer exec-tok" {
							t.Errorf("the node got Authorization %q, want the exec plugin's token", nodeAuth[0])
						}
					case "client certificate":
						if nodeCerts == 0 || nodeAuth[0] != "" {
							t.Errorf("the node got %d client certificates and Authorization %q, want the certificate only", nodeCerts, nodeAuth[0])
						}
					}
					if by != nil {
						conns, auth, certs := by.contacted()
						if conns != 0 || len(auth) != 0 || certs != 0 {
							t.Errorf("the redirect target was contacted: %d connections, Authorization headers %q, %d client certificates", conns, auth, certs)
						}
					}
				})
			}
		}
	}
}

// TestRedirectInAutoMode: a redirect from /metrics/resource sends an auto
// node to /stats/summary at its own address; the redirect target is
// never contacted, whether the summary works or redirects too.
func TestRedirectInAutoMode(t *testing.T) {
	summary := readTestdata(t, "summary-pods.json")
	for _, tt := range []struct {
		name             string
		summaryRedirects bool
	}{
		{"summary answers", false},
		{"summary redirects too", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			by := startBystander(t, false)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == summaryPath && !tt.summaryRedirects {
					_, _ = w.Write([]byte(summary))
					return
				}
				http.Redirect(w, r, by.srv.URL+r.URL.Path, http.StatusFound)
			}))
			defer srv.Close()
			c, _ := newTestClient(t, EndpointAuto, nil)
			b, err := c.GetMetrics(context.Background(), nodeFor(t, srv))
			if tt.summaryRedirects {
				if ReasonOf(err) != ReasonRedirect {
					t.Errorf("got %v (reason %s), want a redirect error", err, ReasonOf(err))
				}
			} else if err != nil || len(b.Pods) != 4 {
				t.Errorf("got %v, want the summary's 4 pods", err)
			}
			if conns, auth, _ := by.contacted(); conns != 0 {
				t.Errorf("the redirect target was contacted %d times (Authorization %q)", conns, auth)
			}
		})
	}
}

// execTokenPlugin writes a client-go exec credential plugin that hands out
// token, and returns its configuration.
func execTokenPlugin(t *testing.T, token string) *clientcmdapi.ExecConfig {
	t.Helper()
	script := filepath.Join(t.TempDir(), "get-token")
	cred := `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"` + token + `"}}`
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '"+cred+"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &clientcmdapi.ExecConfig{
		Command:         script,
		APIVersion:      "client.authentication.k8s.io/v1",
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}
}
