package scraper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/gate"
)

type fakeLister []*corev1.Node

func (f fakeLister) List(sel labels.Selector) ([]*corev1.Node, error) {
	var out []*corev1.Node
	for _, n := range f {
		if sel.Matches(labels.Set(n.Labels)) {
			out = append(out, n)
		}
	}
	return out, nil
}

// fakeClient answers per node: a delay before answering (honouring ctx) and
// an error to return.
type fakeClient struct {
	delay map[string]time.Duration
	fail  map[string]error
	// decode is how long a body takes to decode, holding a slot of the
	// scraper's decode gate as the kubelet client does.
	decode   time.Duration
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	decoding atomic.Int64
	maxDec   atomic.Int64
}

// raise sets m to n when n is larger.
func raise(m *atomic.Int64, n int64) {
	for {
		old := m.Load()
		if n <= old || m.CompareAndSwap(old, n) {
			return
		}
	}
}

func (f *fakeClient) GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error) {
	raise(&f.maxSeen, f.inFlight.Add(1))
	defer f.inFlight.Add(-1)
	if d := f.delay[node.Name]; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s: %w", node.Name, ctx.Err())
		}
	}
	if err := f.fail[node.Name]; err != nil {
		return nil, err
	}
	if g := gate.From(ctx); g != nil {
		if err := g.Acquire(ctx); err != nil {
			return nil, err
		}
		defer g.Release()
	}
	raise(&f.maxDec, f.decoding.Add(1))
	defer f.decoding.Add(-1)
	if f.decode > 0 {
		time.Sleep(f.decode)
	}
	return &points.Batch{Node: node.Name, NodePoint: points.Point{Timestamp: 1, Has: points.HasCPU}}, nil
}

type fakeSink struct {
	mu     sync.Mutex
	stored map[string]time.Time
	prunes int
}

func (f *fakeSink) Store(b *points.Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stored == nil {
		f.stored = map[string]time.Time{}
	}
	f.stored[b.Node] = time.Now()
}

func (f *fakeSink) Forget(string) {}

func (f *fakeSink) Prune() {
	f.mu.Lock()
	f.prunes++
	f.mu.Unlock()
}

func nodes(names ...string) fakeLister {
	var out fakeLister
	for _, n := range names {
		out = append(out, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"pool": strings.TrimRight(n, "0123456789")}}})
	}
	return out
}

var errBoom = errors.New("boom")

func TestScrapeOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		nodes      fakeLister
		selector   string
		delay      map[string]time.Duration
		fail       map[string]error
		resolution time.Duration
		timeout    time.Duration
		want       Result
		wantStored []string
	}{
		{
			name:       "all healthy",
			nodes:      nodes("a1", "a2", "b1"),
			resolution: 2 * time.Second, timeout: time.Second,
			want:       Result{Nodes: 3, Succeeded: 3},
			wantStored: []string{"a1", "a2", "b1"},
		},
		{
			name:       "node selector limits the scrape",
			nodes:      nodes("a1", "a2", "b1"),
			selector:   "pool=a",
			resolution: 2 * time.Second, timeout: time.Second,
			want:       Result{Nodes: 2, Succeeded: 2},
			wantStored: []string{"a1", "a2"},
		},
		{
			name:       "one failing node does not hide the others",
			nodes:      nodes("a1", "a2", "b1"),
			fail:       map[string]error{"a2": errBoom},
			resolution: 2 * time.Second, timeout: time.Second,
			want:       Result{Nodes: 3, Succeeded: 2, Failed: 1},
			wantStored: []string{"a1", "b1"},
		},
		{
			name:       "a slow node is cut at its deadline",
			nodes:      nodes("a1", "a2"),
			delay:      map[string]time.Duration{"a1": time.Minute},
			resolution: 5 * time.Second, timeout: 200 * time.Millisecond,
			want:       Result{Nodes: 2, Succeeded: 1, Failed: 1},
			wantStored: []string{"a2"},
		},
		{
			name:       "no nodes",
			nodes:      nodes(),
			resolution: time.Second, timeout: time.Second,
			want: Result{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := labels.Everything()
			if tt.selector != "" {
				var err error
				if sel, err = labels.Parse(tt.selector); err != nil {
					t.Fatal(err)
				}
			}
			client := &fakeClient{delay: tt.delay, fail: tt.fail}
			sink := &fakeSink{}
			s := New(Config{Resolution: tt.resolution, Timeout: tt.timeout, Selector: sel}, tt.nodes, client, sink, nil, clock.RealClock{})
			got := s.Scrape(context.Background())
			got.Duration = 0
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			var stored []string
			for _, n := range tt.nodes {
				if _, ok := sink.stored[n.Name]; ok {
					stored = append(stored, n.Name)
				}
			}
			if diff := cmp.Diff(tt.wantStored, stored); diff != "" {
				t.Errorf("stored nodes (-want +got):\n%s", diff)
			}
			if sink.prunes != 1 {
				t.Errorf("Prune called %d times, want once per cycle", sink.prunes)
			}
			if s.LastCycle().IsZero() {
				t.Errorf("LastCycle not set after a cycle")
			}
		})
	}
}

func TestSlowNodeDoesNotDelayOthers(t *testing.T) {
	names := []string{"slow"}
	for i := range 20 {
		names = append(names, fmt.Sprintf("n%d", i))
	}
	client := &fakeClient{delay: map[string]time.Duration{"slow": time.Minute}}
	sink := &fakeSink{}
	// Two workers: the slow node holds one for its whole timeout, the other
	// must carry all the rest meanwhile.
	s := New(Config{Resolution: 10 * time.Second, Timeout: 2 * time.Second, Parallelism: 2}, nodes(names...), client, sink, nil, clock.RealClock{})
	start := time.Now()
	res := s.Scrape(context.Background())
	if res.Succeeded != 20 || res.Failed != 1 {
		t.Fatalf("result %+v, want 20 succeeded and 1 failed", res)
	}
	for _, n := range names[1:] {
		if at := sink.stored[n].Sub(start); at > time.Second {
			t.Errorf("node %s stored %v after the start, delayed by the slow node", n, at)
		}
	}
}

// TestDecodesAreBounded: Parallelism bounds the bodies decoded at once,
// not the requests awaiting an answer, which all start at once.
func TestDecodesAreBounded(t *testing.T) {
	var names []string
	delay := map[string]time.Duration{}
	for i := range 30 {
		n := fmt.Sprintf("n%d", i)
		names = append(names, n)
		delay[n] = 50 * time.Millisecond
	}
	client := &fakeClient{delay: delay, decode: 20 * time.Millisecond}
	s := New(Config{Resolution: 10 * time.Second, Timeout: 5 * time.Second, Parallelism: 4}, nodes(names...), client, &fakeSink{}, nil, clock.RealClock{})
	if res := s.Scrape(context.Background()); res.Succeeded != 30 {
		t.Fatalf("succeeded %d, want 30", res.Succeeded)
	}
	if got := client.maxDec.Load(); got > 4 || got < 2 {
		t.Errorf("max bodies decoded at once = %d, want between 2 and 4", got)
	}
	if got := client.maxSeen.Load(); got <= 4 {
		t.Errorf("max requests in flight = %d, want more than the 4 decode slots: waiting takes no slot", got)
	}
}

// TestCycleEndsAtResolution: a cycle returns after one resolution though
// its requests (10s timeout) run on; they land later, and the next cycle
// does not start a second request to their nodes.
func TestCycleEndsAtResolution(t *testing.T) {
	var names []string
	delay := map[string]time.Duration{}
	for i := range 6 {
		n := fmt.Sprintf("n%d", i)
		names = append(names, n)
		delay[n] = 700 * time.Millisecond
	}
	client := &fakeClient{delay: delay}
	sink := &fakeSink{}
	s := New(Config{Resolution: 300 * time.Millisecond, Timeout: 10 * time.Second, Parallelism: 2}, nodes(names...), client, sink, NewMetrics(metrics.NewKubeRegistry(), 1), clock.RealClock{})
	ctx := context.Background()
	res := s.Scrape(ctx)
	if res.Duration > 2*time.Second {
		t.Errorf("cycle took %v, want it to end near the 300ms resolution", res.Duration)
	}
	if want := (Result{Nodes: 6, InFlight: 6}); res.Nodes != want.Nodes || res.InFlight != want.InFlight || res.Succeeded+res.Failed+res.Busy != 0 {
		t.Errorf("first cycle %+v, want all 6 nodes in flight", res)
	}
	res = s.Scrape(ctx)
	if res.Busy != 6 || res.InFlight != 0 {
		t.Errorf("second cycle %+v, want all 6 nodes busy (not started twice)", res)
	}
	if st, _ := s.NodeStatus("n0"); st.Skipped != 1 {
		t.Errorf("n0 status %+v, want 1 cycle skipped", st)
	}
	if got := client.maxSeen.Load(); got != 6 {
		t.Errorf("%d requests in flight at most, want 6: one per node", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.stored)
		sink.mu.Unlock()
		if n == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 6 nodes stored 5s later, want the requests that outlived their cycle to land", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, _ := s.NodeStatus("n0"); st.Skipped != 0 || st.LastSuccess.IsZero() {
		t.Errorf("n0 status %+v after its request landed, want a success and no skip", st)
	}
}

func TestOffsetIsStableAndWithinSpread(t *testing.T) {
	spread := 3 * time.Second
	seen := map[time.Duration]bool{}
	for i := range 200 {
		name := fmt.Sprintf("node-%d", i)
		o := offset(name, spread)
		if o < 0 || o >= spread {
			t.Fatalf("offset(%s) = %v, outside [0, %v)", name, o, spread)
		}
		if again := offset(name, spread); again != o {
			t.Fatalf("offset(%s) changed from %v to %v", name, o, again)
		}
		seen[o/(spread/10)] = true
	}
	if len(seen) < 8 {
		t.Errorf("200 nodes fell in only %d of 10 tenths of the spread, want them spread out", len(seen))
	}
	if got := offset("x", 0); got != 0 {
		t.Errorf("offset with no spread = %v, want 0", got)
	}
	// Starts fall on phase steps: a handful of bursts, not one per node.
	starts := map[time.Duration]bool{}
	for i := range 1000 {
		starts[offset(fmt.Sprintf("node-%d", i), spread)] = true
	}
	if want := int(spread / phaseStep); len(starts) != want {
		t.Errorf("1000 nodes start at %d distinct offsets, want the %d slots", len(starts), want)
	}
}

func TestFailureMetricsArePrunedForDeletedNodes(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	m := NewMetrics(reg, 15)
	client := &fakeClient{fail: map[string]error{"a1": errBoom}}
	s := New(Config{Resolution: time.Second, Timeout: time.Second, Classify: func(error) string { return "decode" }},
		nodes("a1", "a2"), client, &fakeSink{}, m, clock.RealClock{})
	s.Scrape(context.Background())
	s.Scrape(context.Background())

	want := `
# HELP metrics_server_kubelet_scrape_failures_total [ALPHA] Failed scrapes per node and reason (no_address, connection, timeout, tls, http_status, redirect, too_large, decode, no_decode_slot, other). Series of deleted nodes are removed.
# TYPE metrics_server_kubelet_scrape_failures_total counter
metrics_server_kubelet_scrape_failures_total{node="a1",reason="decode"} 2
# HELP metrics_server_kubelet_request_total [ALPHA] Number of requests sent to the kubelet API, by outcome.
# TYPE metrics_server_kubelet_request_total counter
metrics_server_kubelet_request_total{success="false"} 2
metrics_server_kubelet_request_total{success="true"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "metrics_server_kubelet_scrape_failures_total", "metrics_server_kubelet_request_total"); err != nil {
		t.Fatal(err)
	}
	s.ForgetNode("a1")
	s.ForgetNode("a2")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node" {
					t.Errorf("series %s{node=%q} left after the node was forgotten", f.GetName(), l.GetValue())
				}
			}
		}
	}
	// A node scraped again after it was forgotten gets fresh series, not
	// the deleted ones.
	s.Scrape(context.Background())
	if got := requestCount(t, reg, "a2"); got != 1 {
		t.Errorf("a2 has %d requests counted after it came back, want 1", got)
	}
}

// requestCount is the number of requests in node's duration histogram.
func requestCount(t *testing.T, reg metrics.KubeRegistry, node string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "metrics_server_kubelet_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node" && l.GetValue() == node {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestRunStopsWithContext(t *testing.T) {
	sink := &fakeSink{}
	s := New(Config{Resolution: 50 * time.Millisecond, Timeout: 40 * time.Millisecond}, nodes("a1"), &fakeClient{}, sink, nil, clock.RealClock{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.After(5 * time.Second)
	for {
		sink.mu.Lock()
		n := sink.prunes
		sink.mu.Unlock()
		if n >= 3 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("only %d cycles in 5s at a 50ms resolution", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
}

// runUntil starts s.Run and returns once done says so, failing the test
// with what done last said after 5s; it returns when Run started.
func runUntil(t *testing.T, s *Scraper, done func() (bool, string)) time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	start := time.Now()
	go s.Run(ctx)
	deadline := time.After(5 * time.Second)
	for {
		ok, what := done()
		if ok {
			cancel()
			return start
		}
		select {
		case <-deadline:
			t.Fatalf("5s after start: %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestRunFollowsUpQuicklyAfterStart(t *testing.T) {
	sink := &fakeSink{}
	s := New(Config{Resolution: 10 * time.Second, Timeout: time.Second, Spread: 3 * time.Second, FollowUp: 300 * time.Millisecond},
		nodes("a1", "a2"), &fakeClient{}, sink, nil, clock.RealClock{})
	start := runUntil(t, s, func() (bool, string) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.prunes >= 2, fmt.Sprintf("%d cycles, want the start-up cycle and its follow-up", sink.prunes)
	})
	// Start-up cycles start every node at once, not spread over 3s.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("two start-up cycles took %v, want them well under the 3s spread", took)
	}
}

// timesSink records every store of every node.
type timesSink struct {
	mu     sync.Mutex
	stored map[string][]time.Time
}

func (f *timesSink) Store(b *points.Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stored == nil {
		f.stored = map[string][]time.Time{}
	}
	f.stored[b.Node] = append(f.stored[b.Node], time.Now())
}

func (f *timesSink) Forget(string) {}

func (f *timesSink) Prune() {}

// handshakeClient answers a node's first request slowly (a new TLS
// connection) and later ones quickly (kept alive).
type handshakeClient struct {
	first, later time.Duration
	mu           sync.Mutex
	seen         map[string]bool
}

func (h *handshakeClient) GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error) {
	h.mu.Lock()
	d := h.later
	if !h.seen[node.Name] {
		d = h.first
		h.seen[node.Name] = true
	}
	h.mu.Unlock()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &points.Batch{Node: node.Name}, nil
}

// Start-up timing tests: five nodes, one worker, 150ms for a node's first
// request. The first cycle needs 750ms, more than two 300ms resolutions,
// where a regular cycle would stop.
const (
	startupResolution = 300 * time.Millisecond
	startupFollowUp   = 250 * time.Millisecond
)

// runStartup runs a scraper over five slow-to-connect nodes until each has
// been scraped scrapes times and returns when it started and the times of
// every node's scrapes.
func runStartup(t *testing.T, scrapes int) (time.Time, map[string][]time.Time) {
	t.Helper()
	names := []string{"n0", "n1", "n2", "n3", "n4"}
	sink := &timesSink{}
	client := &handshakeClient{first: 150 * time.Millisecond, later: 10 * time.Millisecond, seen: map[string]bool{}}
	s := New(Config{Resolution: startupResolution, Timeout: time.Second, Parallelism: 1, FollowUp: startupFollowUp},
		nodes(names...), client, sink, nil, clock.RealClock{})
	start := runUntil(t, s, func() (bool, string) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		done := 0
		for _, n := range names {
			if len(sink.stored[n]) >= scrapes {
				done++
			}
		}
		return done == len(names), fmt.Sprintf("%d of %d nodes scraped %d times", done, len(names), scrapes)
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return start, maps.Clone(sink.stored)
}

// TestStartupReachesEveryNodeAndFollowsUpPerNode: the first cycle after a
// start is not cut at one resolution, and each node's second scrape comes
// at least FollowUp after its own first one.
func TestStartupReachesEveryNodeAndFollowsUpPerNode(t *testing.T) {
	start, stored := runStartup(t, 2)
	for n, ts := range stored {
		if first := ts[0].Sub(start); first > 2*time.Second {
			t.Errorf("node %s first scraped %v after start", n, first)
		}
		if gap := ts[1].Sub(ts[0]); gap < startupFollowUp {
			t.Errorf("node %s: second scrape %v after its first, want at least %v", n, gap, startupFollowUp)
		}
	}
}

// TestRegularCyclesStartAResolutionAfterStartup: a start-up longer than a
// resolution must not leave a tick behind that scrapes every node again
// at once after its follow-up.
func TestRegularCyclesStartAResolutionAfterStartup(t *testing.T) {
	_, stored := runStartup(t, 3)
	for n, ts := range stored {
		if gap := ts[2].Sub(ts[1]); gap < startupResolution/2 {
			t.Errorf("node %s: first regular scrape %v after its follow-up, want about a resolution (%v)", n, gap, startupResolution)
		}
	}
}

// recyclingClient hands out one batch per scrape and checks that each
// comes back once, after the sink has stored it.
type recyclingClient struct {
	sink *orderSink

	mu       sync.Mutex
	out      map[*points.Batch]bool // handed out, not yet back
	recycled int
	errs     []string
}

func (c *recyclingClient) GetMetrics(_ context.Context, node *corev1.Node) (*points.Batch, error) {
	b := &points.Batch{Node: node.Name}
	c.mu.Lock()
	c.out[b] = true
	c.mu.Unlock()
	return b, nil
}

func (c *recyclingClient) Recycle(b *points.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.out[b]:
		c.errs = append(c.errs, "a batch came back twice or was never handed out: "+b.Node)
	case !c.sink.has(b):
		c.errs = append(c.errs, "a batch came back before the sink stored it: "+b.Node)
	}
	delete(c.out, b)
	c.recycled++
}

type orderSink struct {
	mu     sync.Mutex
	stored map[*points.Batch]bool
}

func (s *orderSink) Store(b *points.Batch) {
	s.mu.Lock()
	s.stored[b] = true
	s.mu.Unlock()
}

func (s *orderSink) has(b *points.Batch) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored[b]
}

func (s *orderSink) Forget(string) {}

func (s *orderSink) Prune() {}

func TestStoredBatchesGoBackToTheClient(t *testing.T) {
	sink := &orderSink{stored: map[*points.Batch]bool{}}
	client := &recyclingClient{sink: sink, out: map[*points.Batch]bool{}}
	s := New(Config{Resolution: time.Second, Timeout: time.Second}, nodes("a1", "a2", "a3"), client, sink, nil, clock.RealClock{})
	s.Scrape(context.Background())
	s.Scrape(context.Background())
	client.mu.Lock()
	defer client.mu.Unlock()
	for _, e := range client.errs {
		t.Error(e)
	}
	if client.recycled != 6 || len(client.out) != 0 {
		t.Errorf("%d batches came back, %d did not; want all 6 back", client.recycled, len(client.out))
	}
}
