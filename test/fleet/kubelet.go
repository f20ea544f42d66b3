package fleet

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// serveKubelets starts one HTTPS listener per node on its own address.
func (f *Fleet) serveKubelets(ctx context.Context) error {
	if f.cfg.KubeletCA == nil {
		return errors.New("fleet needs a KubeletCA to sign the kubelets' serving certificates")
	}
	wrong, err := f.cfg.KubeletCA.Issue(pki.Request{CommonName: "not-this-node", DNSNames: []string{"not-this-node.invalid"}, Server: true})
	if err != nil {
		return err
	}
	f.wrongCert = &tls.Certificate{Certificate: [][]byte{wrong.Cert.Raw}, PrivateKey: wrong.Key}
	for _, n := range f.nodes {
		if err := f.serveNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// serveNode starts node n's kubelet on its current address with a serving
// certificate for it; it stops when ctx ends or the node is deleted.
func (f *Fleet) serveNode(ctx context.Context, n *node) error {
	ip := n.addr()
	kp, err := f.cfg.KubeletCA.Issue(pki.Request{CommonName: n.name, DNSNames: []string{n.name}, IPs: []net.IP{ip}, Server: true})
	if err != nil {
		return fmt.Errorf("node %s: issuing its serving certificate: %w", n.name, err)
	}
	cert := tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		n.mu.Lock()
		m := n.mode
		n.mu.Unlock()
		if m == ModeWrongTLSName {
			return f.wrongCert, nil
		}
		if c, err := f.modeCert(n, m); c != nil || err != nil {
			return c, err
		}
		return &cert, nil
	}}
	lis, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(f.cfg.Port)))
	if err != nil {
		return fmt.Errorf("node %s: listening on %s: %w", n.name, ip, err)
	}
	srv := &http.Server{Handler: f.handler(n), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			n.mu.Lock()
			defer n.mu.Unlock()
			if n.conns == nil {
				n.conns = map[net.Conn]struct{}{}
			}
			switch st {
			case http.StateNew:
				n.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(n.conns, c)
			}
		}}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	go func() { _ = srv.ServeTLS(lis, "", "") }()
	go func() {
		<-ctx.Done()
		stopServer(srv)
	}()
	return nil
}

// stopServer shuts a kubelet down, waiting briefly for answers in flight,
// then closes what is left (hanging requests included).
func stopServer(srv *http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
}

// handler is node n's kubelet: request recording, webhook authentication
// and authorization, the node's faults, then the kubelet's own handlers.
func (f *Fleet) handler(n *node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.recording.Load() {
			arrived := time.Now()
			defer func() { f.record(Request{Node: n.name, Path: r.URL.Path, Arrived: arrived, Done: time.Now()}) }()
		}
		n.mu.Lock()
		n.hits[r.URL.Path]++
		n.mu.Unlock()
		var sub string
		switch r.URL.Path {
		case "/stats/summary":
			sub = "stats"
		case "/metrics/resource":
			sub = "metrics"
		default:
			http.NotFound(w, r)
			return
		}
		if n.refusesToken(w) {
			return
		}
		if f.auth != nil {
			if status, err := f.auth.check(r.Context(), r.Header.Get("Authorization"), sub, n.name); status != 0 {
				http.Error(w, err.Error(), status)
				return
			}
		}
		if f.fault(w, r, n, sub) {
			return
		}
		if sub == "stats" {
			f.stats.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nodeKey{}, n)))
			return
		}
		if f.cfg.FastResource {
			serveFastResource(w, r, n.sample(n.clock.Now(), false), f.processStart)
			return
		}
		n.resource.ServeHTTP(w, r)
	})
}

// gzipWriters are reused across answers, as the kubelet's metrics handler
// (Prometheus' promhttp) reuses its compressors.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// writeMaybeGzip answers body gzip-compressed when the request accepts gzip,
// as a real kubelet's /metrics/resource does (promhttp compresses whenever
// Accept-Encoding offers gzip; Go's HTTP client offers it unless the caller
// sets Accept-Encoding itself).
func writeMaybeGzip(w http.ResponseWriter, r *http.Request, body []byte) {
	if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
		_, _ = w.Write(body)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Add("Vary", "Accept-Encoding")
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(w)
	_, _ = zw.Write(body)
	_ = zw.Close()
	gzipWriters.Put(zw)
}

// acceptsGzip says whether Accept-Encoding values offer gzip with a
// non-zero quality.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// snapshot copies the node's pods under its lock.
func (n *node) snapshot() []*pod {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*pod, 0, len(n.pods))
	for _, p := range n.pods {
		out = append(out, p)
	}
	return out
}
