package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"
)

// A metrics server asks every kubelet one GET per resolution and keeps a
// connection to each. The standard library's transport gives every kept
// connection a read goroutine, a write goroutine and two 4 KiB buffers, and
// hands each request and response between three goroutines. connTransport
// instead does the request on the caller's goroutine: it writes the request,
// reads the answer and puts the connection back, so an idle kubelet
// connection is only the TLS connection itself, and a scrape costs no
// goroutine hand-offs.
//
// It speaks HTTP/1.1 only, one request at a time per connection, GET and
// HEAD without a body: what a scrape needs. Client falls back to the standard
// transport for what it does not do (proxies, custom dialers).

// defaultIdleTimeout is how long an unused kubelet connection is kept. It is
// client-go's (and the kubelet server's) idle timeout; connections are
// reused every resolution, far within it.
const defaultIdleTimeout = 90 * time.Second

// certCheckEvery is how often a client certificate or CA read from files
// is checked for a new one on disk; connections made with the old one are
// then replaced as they come up for reuse.
const certCheckEvery = time.Minute

type connTransport struct {
	// caFile, when set, is reloaded into tls.RootCAs as it changes; caData
	// is what was last loaded.
	caFile      string
	caData      []byte
	dialer      net.Dialer
	idleTimeout time.Duration
	now         func() time.Time
	// clientCert returns the current client certificate when it is read
	// from files that may be rotated; nil otherwise.
	clientCert func() (*tls.Certificate, error)

	mu sync.Mutex
	// tls is the base TLS configuration (nil for plain HTTP); a reloaded
	// CA replaces it.
	tls       *tls.Config
	idle      map[string]*conn // by scheme://host:port
	lastSweep time.Time
	certGen   uint64
	lastCheck time.Time
	lastCert  *tls.Certificate
}

// conn is one kubelet connection.
type conn struct {
	net.Conn
	key       string
	idleSince time.Time
	certGen   uint64
	reused    bool
	// read counts bytes read on this use; a reused connection that fails
	// before reading anything was closed by the kubelet while idle.
	read int64
	// headLeft, while reading a response head, is how many more bytes it
	// may take; 0 when no head is being read.
	headLeft int64
}

// maxResponseHead bounds a response's status line and headers (and what
// the reader buffers beyond them): a kubelet's are a few hundred bytes.
const maxResponseHead = 64 << 10

var errHeadTooLarge = fmt.Errorf("response head larger than %d bytes", maxResponseHead)

func (c *conn) Read(p []byte) (int, error) {
	if c.headLeft > 0 {
		if int64(len(p)) > c.headLeft {
			p = p[:c.headLeft]
		}
	} else if c.headLeft < 0 {
		return 0, errHeadTooLarge
	}
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	if c.headLeft > 0 {
		if c.headLeft -= int64(n); c.headLeft == 0 {
			c.headLeft = -1
		}
	}
	return n, err
}

// newRoundTripper builds the kubelet round tripper for cfg: connTransport
// with client-go's credential wrappers (tokens, token files, basic auth,
// impersonation, user agent) when it can serve the configuration, else
// client-go's standard transport. The second result is the connTransport
// when one is used.
func newRoundTripper(cfg *rest.Config) (http.RoundTripper, *connTransport, error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, nil, err
	}
	if cfg.Proxy != nil || cfg.Dial != nil || proxyFromEnv() {
		rt, err := rest.TransportFor(cfg)
		return rt, nil, err
	}
	tlsCfg, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, nil, err
	}
	ct := newConnTransport(tlsCfg)
	if tc.TLS.ReloadTLSFiles && tlsCfg != nil && tlsCfg.GetClientCertificate != nil {
		get := tlsCfg.GetClientCertificate
		ct.clientCert = func() (*tls.Certificate, error) { return get(nil) }
	}
	// client-go (its CA rotation feature, on by default) reloads a CA
	// given as a file; so does connTransport.
	if tc.TLS.ReloadCAFiles && tlsCfg != nil && tlsCfg.RootCAs != nil && tc.TLS.CAFile != "" {
		ct.caFile, ct.caData = tc.TLS.CAFile, tc.TLS.CAData
	}
	rt, err := transport.HTTPWrappersForConfig(tc, ct)
	if err != nil {
		return nil, nil, err
	}
	return rt, ct, nil
}

// proxyFromEnv says whether the environment names an HTTP(S) proxy, which
// the standard transport honours for kubelets as upstream's does.
func proxyFromEnv() bool {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

func newConnTransport(tlsCfg *tls.Config) *connTransport {
	return &connTransport{
		tls:         tlsCfg,
		dialer:      net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		idleTimeout: defaultIdleTimeout,
		now:         time.Now,
		idle:        map[string]*conn{},
	}
}

// RoundTrip does one request on the caller's goroutine. A reused
// connection that turns out closed by the kubelet is replaced once.
func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	addr := hostPortOf(req.URL.Scheme, req.URL.Host)
	key := req.URL.Scheme + "://" + addr
	for attempt := 0; ; attempt++ {
		c, err := t.get(req.Context(), key, req.URL.Scheme, addr)
		if err != nil {
			return nil, withCtx(req.Context(), err)
		}
		resp, err := t.do(c, req)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		if attempt == 0 && c.reused && c.read == 0 && staleConnErr(err) && req.Context().Err() == nil {
			continue
		}
		return nil, withCtx(req.Context(), err)
	}
}

func checkRequest(req *http.Request) error {
	if req.URL == nil {
		return errors.New("kubelet request without a URL")
	}
	if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
		return fmt.Errorf("unsupported scheme %q", req.URL.Scheme)
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return fmt.Errorf("unsupported method %s: kubelet requests are GETs", req.Method)
	}
	if req.Body != nil && req.Body != http.NoBody {
		return errors.New("kubelet requests carry no body")
	}
	return nil
}

// hostPortOf adds the scheme's default port to a URL host without one.
func hostPortOf(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "http" {
		return net.JoinHostPort(host, "80")
	}
	return net.JoinHostPort(host, "443")
}

// staleConnErr: the kind of failure a kubelet's close of an idle
// connection causes on its next use.
func staleConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// withCtx makes a failure caused by the request's context say so.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// get takes the idle connection to key, or dials one.
func (t *connTransport) get(ctx context.Context, key, scheme, addr string) (*conn, error) {
	now := t.now()
	t.checkRotation(now)
	t.mu.Lock()
	c := t.idle[key]
	delete(t.idle, key)
	gen := t.certGen
	t.mu.Unlock()
	if c != nil {
		if now.Sub(c.idleSince) < t.idleTimeout && c.certGen == gen {
			c.reused, c.read = true, 0
			return c, nil
		}
		_ = c.Close()
	}
	raw, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if scheme == "https" {
		tc := tls.Client(raw, t.tlsConfigFor(addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		raw = tc
	}
	return &conn{Conn: raw, key: key, certGen: gen}, nil
}

// tlsConfigFor is the TLS configuration for one kubelet: the server name
// is the host asked for unless one is configured, and only HTTP/1.1 is
// offered.
func (t *connTransport) tlsConfigFor(addr string) *tls.Config {
	t.mu.Lock()
	base := t.tls
	t.mu.Unlock()
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// checkRotation notices a rotated client certificate or CA file, at most
// once per certCheckEvery: connections made before are not reused.
func (t *connTransport) checkRotation(now time.Time) {
	if t.clientCert == nil && t.caFile == "" {
		return
	}
	t.mu.Lock()
	due := now.Sub(t.lastCheck) >= certCheckEvery
	if due {
		t.lastCheck = now
	}
	t.mu.Unlock()
	if !due {
		return
	}
	if t.clientCert != nil {
		if cert, err := t.clientCert(); err == nil && cert != nil {
			t.mu.Lock()
			if t.lastCert != nil && t.lastCert != cert {
				t.certGen++
			}
			t.lastCert = cert
			t.mu.Unlock()
		}
	}
	if t.caFile != "" {
		t.reloadCA()
	}
}

// reloadCA takes a changed CA file; one that cannot be read or holds no
// certificate leaves the CA as it was.
func (t *connTransport) reloadCA() {
	data, err := os.ReadFile(t.caFile)
	if err != nil {
		klog.ErrorS(err, "Reading the kubelet CA file; keeping the CA loaded before", "file", t.caFile)
		return
	}
	t.mu.Lock()
	same := bytes.Equal(data, t.caData)
	t.mu.Unlock()
	if same {
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		klog.ErrorS(nil, "The kubelet CA file holds no PEM certificate; keeping the CA loaded before", "file", t.caFile)
		return
	}
	t.mu.Lock()
	cfg := t.tls.Clone()
	cfg.RootCAs = pool
	t.tls, t.caData = cfg, data
	t.certGen++
	t.mu.Unlock()
	klog.InfoS("Reloaded the kubelet CA", "file", t.caFile)
}

// put keeps c for its kubelet's next request and, once per idle timeout,
// closes connections unused for that long (nodes gone or no longer asked).
func (t *connTransport) put(c *conn) {
	now := t.now()
	c.idleSince = now
	var closing []*conn
	t.mu.Lock()
	if old := t.idle[c.key]; old != nil {
		closing = append(closing, old)
	}
	t.idle[c.key] = c
	if now.Sub(t.lastSweep) >= t.idleTimeout {
		t.lastSweep = now
		for k, ic := range t.idle {
			if now.Sub(ic.idleSince) >= t.idleTimeout {
				closing = append(closing, ic)
				delete(t.idle, k)
			}
		}
	}
	t.mu.Unlock()
	for _, ic := range closing {
		_ = ic.Close()
	}
}

// CloseIdleConnections closes every kept connection.
func (t *connTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string]*conn{}
	t.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

var (
	readers  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	requests = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}
	// longAgo is a deadline that has passed: it stops a blocked read or
	// write at once.
	longAgo = time.Unix(1, 0)
)

// do writes req on c and reads the response head. The body reads from c;
// closing it returns c to the idle set when the body was read to its end.
func (t *connTransport) do(c *conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	deadline, _ := ctx.Deadline() // zero when none
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(longAgo) })
	bp := requests.Get().(*[]byte)
	b, err := appendRequest((*bp)[:0], req)
	if err == nil {
		_, err = c.Write(b)
	}
	*bp = b[:0]
	requests.Put(bp)
	if err != nil {
		stop()
		return nil, err
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	c.headLeft = maxResponseHead
	resp, err := http.ReadResponse(br, req)
	c.headLeft = 0
	if err != nil {
		stop()
		br.Reset(nil)
		readers.Put(br)
		return nil, shortErr(err)
	}
	resp.Body = &body{rc: resp.Body, c: c, br: br, t: t, stop: stop, ctx: ctx, keep: !resp.Close}
	return resp, nil
}

// shortErr keeps an error's text short: the standard library quotes a
// malformed status line whole.
func shortErr(err error) error {
	const maxLen = 300
	if msg := err.Error(); len(msg) > maxLen {
		return fmt.Errorf("%s... (%d bytes of error text cut)", msg[:maxLen], len(msg)-maxLen)
	}
	return err
}

// appendRequest renders a GET or HEAD request head.
func appendRequest(b []byte, req *http.Request) ([]byte, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return nil, fmt.Errorf("invalid host %q", host)
	}
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if _, ok := req.Header["User-Agent"]; !ok {
		b = append(b, "User-Agent: Go-http-client/1.1\r\n"...)
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("invalid header name %q", k)
		}
		if k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("invalid value of header %s", k)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...), nil
}

// body is a response body on a kept connection.
type body struct {
	rc     io.ReadCloser
	c      *conn
	br     *bufio.Reader
	t      *connTransport
	stop   func() bool
	ctx    context.Context
	keep   bool // the kubelet did not ask to close
	eof    bool
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on a closed kubelet response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		err = withCtx(b.ctx, err)
	}
	return n, err
}

// Close returns the connection to the idle set when the whole body was
// read, nothing more is buffered and the request's context did not
// interrupt it; otherwise it closes the connection.
func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	stopped := b.stop()
	reuse := b.eof && b.keep && stopped && b.br.Buffered() == 0
	b.br.Reset(nil)
	readers.Put(b.br)
	if reuse && b.c.SetDeadline(time.Time{}) == nil {
		b.t.put(b.c)
		return nil
	}
	return b.c.Close()
}
