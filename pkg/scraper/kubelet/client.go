package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/gate"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
)

const (
	summaryPath      = "/stats/summary"
	summaryQuery     = "only_cpu_and_memory=true"
	resourcePath     = "/metrics/resource"
	acceptJSON       = "application/json"
	acceptPrometheus = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
)

// Client scrapes kubelets. It is safe for concurrent use; one Client serves
// every node and shares one connection pool.
type Client struct {
	cfg  Config
	http *http.Client
	// conns is the connection-keeping transport under http, nil when the
	// standard one is used.
	conns *connTransport

	mu sync.Mutex
	// fellBack holds the nodes on /stats/summary in auto mode. Entries
	// older than RetryPreferredAfter mean nothing and are swept when the
	// map reaches sweepAt entries, so a node deleted while its request
	// was in flight (Forget ran before the request fell back) leaves no
	// entry behind for longer than one retry period's growth.
	fellBack map[string]fallback
	sweepAt  int
	// noFull holds, with EphemeralStorage, the nodes whose full summary
	// was refused (an HTTP status, an undecodable or too large answer),
	// by when: they are not asked for it again until RetryPreferredAfter
	// has passed. Swept as fellBack is, at noFullSweepAt entries.
	noFull        map[string]time.Time
	noFullSweepAt int
}

// minSweep is the smallest fellBack size that triggers a sweep.
const minSweep = 64

// fallback is an auto node's stay on /stats/summary.
type fallback struct {
	// since is when /metrics/resource last failed.
	since time.Time
	// v is the verbosity its start was logged at; its end is logged at
	// the same.
	v int
}

// NewClient builds a Client from cfg; zero fields get their defaults. It
// refuses a plain HTTP configuration that holds credentials.
func NewClient(cfg Config) (*Client, error) {
	cfg.defaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rt, conns, err := newRoundTripper(cfg.Rest)
	if err != nil {
		return nil, fmt.Errorf("building the kubelet transport: %w", err)
	}
	hc := &http.Client{Transport: rt, CheckRedirect: refuseRedirects}
	return &Client{cfg: cfg, http: hc, conns: conns, fellBack: map[string]fallback{}, noFull: map[string]time.Time{}}, nil
}

// refuseRedirects makes the HTTP client hand a redirect back as the
// answer instead of following it. The credential wrappers under the
// client add the bearer token to every request they send, and the client
// certificate goes to every TLS server that asks for one, so a followed
// redirect would carry them to wherever a kubelet (or whoever answers at
// its address) points, plain HTTP included. fetch turns the redirect into
// a ReasonRedirect error for the node.
func refuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// GetMetrics scrapes one node. ctx bounds the whole call, fallback included.
// Every error is a *ScrapeError.
func (c *Client) GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error) {
	addr, err := hostPort(node, c.cfg.AddressTypes, c.cfg.DefaultPort, c.cfg.UseNodeStatusPort)
	if err != nil {
		return nil, &ScrapeError{Node: node.Name, Endpoint: c.firstPath(node), Reason: ReasonNoAddress, Err: err}
	}
	if c.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	switch c.cfg.Endpoint {
	case EndpointSummary:
		return c.summary(ctx, node, addr)
	case EndpointResource:
		return c.resource(ctx, node, addr)
	}
	if c.onFallback(node.Name) {
		return c.summary(ctx, node, addr)
	}
	batch, err := c.fetch(ctx, node, addr, askResource)
	if err == nil {
		c.clearFallback(ctx, node.Name)
		return c.withEphemeralStorage(ctx, node, addr, batch), nil
	}
	if !fallbackWorthy(err) {
		return nil, err
	}
	batch, serr := c.summary(ctx, node, addr)
	if serr != nil {
		return nil, bothFailed(err, serr)
	}
	c.setFallback(ctx, node.Name, err)
	return batch, nil
}

// summary scrapes /stats/summary: the full one with EphemeralStorage,
// else (or when the full one's answer is refused, as the 500 of runtimes
// that cannot report their image filesystem, and for RetryPreferredAfter
// after) the only_cpu_and_memory one.
func (c *Client) summary(ctx context.Context, node *corev1.Node, addr string) (*points.Batch, error) {
	if !c.askFull(node.Name) {
		return c.fetch(ctx, node, addr, askSummary)
	}
	batch, err := c.fetch(ctx, node, addr, askFullSummary)
	if c.fullAnswered(ctx, node.Name, err) {
		return c.fetch(ctx, node, addr, askSummary)
	}
	return batch, err
}

// resource scrapes /metrics/resource, then, with EphemeralStorage, the
// full summary for ephemeral storage.
func (c *Client) resource(ctx context.Context, node *corev1.Node, addr string) (*points.Batch, error) {
	batch, err := c.fetch(ctx, node, addr, askResource)
	if err != nil {
		return nil, err
	}
	return c.withEphemeralStorage(ctx, node, addr, batch), nil
}

// withEphemeralStorage adds to a batch from /metrics/resource the
// ephemeral storage of the full summary, with EphemeralStorage; when that
// request fails, the batch goes without, and its CPU and memory are
// served all the same.
func (c *Client) withEphemeralStorage(ctx context.Context, node *corev1.Node, addr string, batch *points.Batch) *points.Batch {
	if !c.askFull(node.Name) {
		return batch
	}
	full, err := c.fetch(ctx, node, addr, askFullSummary)
	c.fullAnswered(ctx, node.Name, err)
	if err != nil {
		return batch
	}
	mergeEphemeralStorage(batch, full)
	recycle(full)
	return batch
}

// askFull says whether to ask node for the full summary: with
// EphemeralStorage, unless its full summary was refused less than
// RetryPreferredAfter ago.
func (c *Client) askFull(node string) bool {
	if !c.cfg.EphemeralStorage {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	since, ok := c.noFull[node]
	return !ok || c.cfg.Clock.Since(since) >= c.cfg.RetryPreferredAfter
}

// fullAnswered records how node's full summary went (err from fetch)
// and reports whether its answer was refused. An answer refused (an HTTP status, as
// the kubelets of runtimes that cannot report their image filesystem
// give, or an undecodable or too large body) stops the asking for
// RetryPreferredAfter, logged at V(2) when it starts and ends; a node
// that did not answer (connection, timeout) is asked again next cycle.
func (c *Client) fullAnswered(ctx context.Context, node string, err error) bool {
	refused := false
	switch ReasonOf(err) {
	case ReasonHTTPStatus, ReasonDecode, ReasonTooLarge, ReasonRedirect:
		refused = err != nil
	}
	c.mu.Lock()
	_, was := c.noFull[node]
	switch {
	case refused:
		c.noFull[node] = c.cfg.Clock.Now()
		if len(c.noFull) >= max(c.noFullSweepAt, minSweep) {
			for n, since := range c.noFull {
				if c.cfg.Clock.Since(since) >= c.cfg.RetryPreferredAfter {
					delete(c.noFull, n)
				}
			}
			c.noFullSweepAt = 2 * len(c.noFull)
		}
	case err == nil:
		delete(c.noFull, node)
	}
	c.mu.Unlock()
	logger := klog.FromContext(ctx)
	switch {
	case refused && !was:
		logger.V(2).Info("No ephemeral storage for the node: its full summary was refused; CPU and memory are served without it", "node", klog.KRef("", node), "reason", ReasonOf(err), "retryAfter", c.cfg.RetryPreferredAfter, "err", err)
	case err == nil && was:
		logger.V(2).Info("The node's full summary answers again: ephemeral storage served", "node", klog.KRef("", node))
	case err != nil && !refused:
		logger.V(4).Info("No ephemeral storage for the node this cycle: its full summary failed", "node", klog.KRef("", node), "reason", ReasonOf(err), "err", err)
	}
	return refused
}

// bothFailed is the error of an auto node whose /metrics/resource and
// /stats/summary fallback both failed: it keeps both errors (errors.Is and
// errors.As see each) and names each endpoint, so neither failure hides
// the other. Its Reason and Status are the resource endpoint's when that
// endpoint answered and its answer was refused (decode, too_large,
// redirect): that failure needs fixing, on the node or here. Otherwise
// (401/403, 404, 5xx: what the fallback exists for) they are the
// summary's. Both arguments are *ScrapeErrors from fetch.
func bothFailed(resource, summary error) error {
	var r, s *ScrapeError
	if !errors.As(resource, &r) || !errors.As(summary, &s) {
		return errors.Join(resource, summary)
	}
	chosen := s
	switch r.Reason {
	case ReasonDecode, ReasonTooLarge, ReasonRedirect:
		chosen = r
	}
	return &ScrapeError{
		Node:    s.Node,
		Address: s.Address,
		Reason:  chosen.Reason,
		Status:  chosen.Status,
		Err:     fmt.Errorf("resource %s: %w; summary %s: %w", r.Endpoint, r.Err, s.Endpoint, s.Err),
	}
}

// Recycle takes back a batch GetMetrics returned, once its receiver has
// let go of it and its slices (names may be kept: they are never reused),
// so a later scrape fills it instead of allocating one.
func (c *Client) Recycle(b *points.Batch) { recycle(b) }

// Forget drops what the client remembers about a deleted node.
func (c *Client) Forget(node string) {
	c.mu.Lock()
	delete(c.fellBack, node)
	delete(c.noFull, node)
	c.mu.Unlock()
}

// fallbackWorthy: /metrics/resource answered, but not usefully. A node that does
// not answer at all (connection, timeout, TLS) will not answer on the other
// endpoint either. 401 and 403 count: a ClusterRole written for upstream
// grants nodes/stats but not nodes/metrics. So does a refused redirect: the
// fallback asks the node's own address again, never the redirect's.
func fallbackWorthy(err error) bool {
	switch ReasonOf(err) {
	case ReasonHTTPStatus, ReasonRedirect, ReasonDecode, ReasonTooLarge:
		return true
	}
	return false
}

// sweepLocked drops expired fallback entries once the map has doubled
// since the last sweep: amortised O(1) an insertion. c.mu must be held.
func (c *Client) sweepLocked() {
	if len(c.fellBack) < max(c.sweepAt, minSweep) {
		return
	}
	for node, fb := range c.fellBack {
		if c.cfg.Clock.Since(fb.since) >= c.cfg.RetryPreferredAfter {
			delete(c.fellBack, node)
		}
	}
	c.sweepAt = 2 * len(c.fellBack)
}

func (c *Client) onFallback(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	fb, ok := c.fellBack[node]
	return ok && c.cfg.Clock.Since(fb.since) < c.cfg.RetryPreferredAfter
}

// setFallback puts node on /stats/summary after /metrics/resource failed
// with cause, and logs the change once, with the cause. A fallback for an
// answer this client refused (undecodable, too large, a redirect) is
// logged at the default verbosity: the node or this decoder needs a look.
// One for an HTTP status (a kubelet or emulator without the endpoint, a
// ClusterRole without nodes/metrics) is expected and logged at V(2). A
// retry that fails again is logged at V(4), unless its cause is louder.
func (c *Client) setFallback(ctx context.Context, node string, cause error) {
	v := 2
	switch ReasonOf(cause) {
	case ReasonDecode, ReasonTooLarge, ReasonRedirect:
		v = 0
	}
	c.mu.Lock()
	old, was := c.fellBack[node]
	// A retry failing as before is no news; one failing for a louder
	// cause than the first (a 404, then an undecodable body) is.
	again := was && v >= old.v
	if again {
		v = old.v
	}
	c.fellBack[node] = fallback{since: c.cfg.Clock.Now(), v: v}
	c.sweepLocked()
	c.mu.Unlock()
	logger := klog.FromContext(ctx)
	if again {
		logger.V(4).Info("Still on /stats/summary: /metrics/resource failed again", "node", klog.KRef("", node), "reason", ReasonOf(cause), "err", cause)
		return
	}
	logger.V(v).Info("Falling back to /stats/summary", "node", klog.KRef("", node), "reason", ReasonOf(cause), "retryAfter", c.cfg.RetryPreferredAfter, "err", cause)
}

// clearFallback takes node back to /metrics/resource, logged at the
// verbosity its fallback was.
func (c *Client) clearFallback(ctx context.Context, node string) {
	c.mu.Lock()
	old, was := c.fellBack[node]
	delete(c.fellBack, node)
	c.mu.Unlock()
	if was {
		klog.FromContext(ctx).V(old.v).Info("Back on /metrics/resource", "node", klog.KRef("", node))
	}
}

func (c *Client) resourcePathFor(node *corev1.Node) string {
	if p := node.Annotations[ResourcePathAnnotation]; p != "" {
		return p
	}
	return resourcePath
}

func (c *Client) firstPath(node *corev1.Node) string {
	if c.cfg.Endpoint == EndpointSummary {
		return summaryPath
	}
	return c.resourcePathFor(node)
}

// fetch asks one endpoint and decodes its answer.
func (c *Client) fetch(ctx context.Context, node *corev1.Node, addr string, a ask) (*points.Batch, error) {
	resource := a == askResource
	req, err := newRequest(ctx, c.cfg.Scheme, addr, node, a)
	if err != nil {
		return nil, &ScrapeError{Node: node.Name, Address: addr, Reason: ReasonConnection, Err: fmt.Errorf("building the request: %w", err)}
	}
	u := req.URL
	fail := func(reason Reason, status int, err error) error {
		return &ScrapeError{Node: node.Name, Address: addr, Endpoint: u.Path, Reason: reason, Status: status, Err: err}
	}
	now := c.cfg.Clock.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		reason := transportReason(err)
		if cause := tlsCause(err, addr); reason == ReasonTLS && cause != "" {
			err = fmt.Errorf("%s: %w", cause, err)
		}
		return nil, fail(reason, 0, err)
	}
	defer func() {
		// Drain a little so the connection can be reused, never much.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()
	if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && loc != "" {
		return nil, fail(ReasonRedirect, resp.StatusCode, fmt.Errorf(
			"redirect refused: the kubelet answered %d with Location %q; redirects are never followed, so credentials go to the node's address only: check what answers at this address",
			resp.StatusCode, excerpt.Clip(loc, maxLocation)))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail(ReasonHTTPStatus, resp.StatusCode, statusError(resp.StatusCode, resp.Body))
	}
	// Waiting for the answer took no decode slot; reading and decoding
	// the body takes one, so that the scraper's bound on bodies in memory
	// holds however many requests wait. The wait is bounded by ctx.
	if g := gate.From(ctx); g != nil {
		if err := g.Acquire(ctx); err != nil {
			return nil, fail(ReasonNoDecodeSlot, 0, fmt.Errorf(
				"the kubelet answered but no decode slot came free before the request's deadline (%d bodies are decoded at once): if this repeats, raise --kubelet-max-concurrency, or the server's CPU limit if decodes are slow: %w", g.Size(), err))
		}
		defer g.Release()
	}
	body := &limitedReader{r: resp.Body, left: c.cfg.MaxResponseBytes}
	var batch *points.Batch
	if resource {
		batch, err = DecodeResource(body, node.Name, now)
	} else {
		batch, err = DecodeSummary(body, node.Name, now)
	}
	if err != nil {
		switch {
		case body.tooLarge:
			return nil, fail(ReasonTooLarge, 0, fmt.Errorf("body larger than %d bytes (see --kubelet-max-response-bytes)", c.cfg.MaxResponseBytes))
		case body.readErr != nil:
			return nil, fail(transportReason(body.readErr), 0, fmt.Errorf("reading the body: %w", body.readErr))
		}
		return nil, fail(ReasonDecode, 0, err)
	}
	return batch, nil
}

// isRedirect: the statuses whose Location a browser would follow.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// maxLocation bounds how much of a redirect's Location an error quotes.
const maxLocation = 256

// limitedReader reads at most left bytes and remembers why it stopped: the
// limit, or an error of the underlying reader.
type limitedReader struct {
	r        io.Reader
	left     int64
	tooLarge bool
	readErr  error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a body exactly at the limit from a larger one.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.tooLarge = true
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.readErr = err
	}
	return n, err
}
