package scraper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/gate"
)

// Fake-clock tests run in a synctest bubble: synctest.Wait returns once
// every goroutine of the scraper is blocked (on the fake clock, on a
// hanging kubelet, or done), so the test steps the fake clock only when
// everything due at the current fake time has happened.

// epoch is where fake clocks start.
var epoch = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// stepper advances clk in steps of at most d, letting the scraper run
// between steps.
type stepper struct {
	clk *clocktesting.FakeClock
}

// advance moves the fake clock forward by total, in steps of d.
func (s stepper) advance(total, d time.Duration) {
	for total > 0 {
		synctest.Wait()
		s.clk.Step(min(d, total))
		total -= d
	}
	synctest.Wait()
}

// clockClient is a kubelet fake on a fake clock: a node answers after its
// latency on the clock, or, from the time hangFrom gives it on, never
// (until ctx ends).
type clockClient struct {
	clk      *clocktesting.FakeClock
	latency  time.Duration
	hangFrom map[string]time.Time
	// latencyOf overrides latency for some nodes.
	latencyOf map[string]time.Duration

	// decode is how long an answer's body takes to decode, holding one
	// of the scraper's decode slots (package gate), on the fake clock.
	decode time.Duration

	mu sync.Mutex
	// calls holds the fake time of each request's start, per node.
	calls       map[string][]time.Time
	inFlight    int
	maxInFlight int
	// decoding counts the bodies being decoded, maxDecoding its peak.
	decoding, maxDecoding int
}

func newClockClient(clk *clocktesting.FakeClock, latency time.Duration, hangFrom map[string]time.Time) *clockClient {
	return &clockClient{clk: clk, latency: latency, hangFrom: hangFrom, calls: map[string][]time.Time{}}
}

func (c *clockClient) GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error) {
	c.mu.Lock()
	c.calls[node.Name] = append(c.calls[node.Name], c.clk.Now())
	c.inFlight++
	c.maxInFlight = max(c.maxInFlight, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	var answer <-chan time.Time
	if from, ok := c.hangFrom[node.Name]; !ok || c.clk.Now().Before(from) {
		d, ok := c.latencyOf[node.Name]
		if !ok {
			d = c.latency
		}
		answer = c.clk.After(d)
	}
	select {
	case <-answer:
	case <-ctx.Done():
		return nil, fmt.Errorf("node %s: %w", node.Name, ctx.Err())
	}
	// As the kubelet client: the body is decoded holding a slot.
	if g := gate.From(ctx); g != nil {
		if err := g.Acquire(ctx); err != nil {
			return nil, fmt.Errorf("node %s: no decode slot: %w", node.Name, err)
		}
		defer g.Release()
	}
	c.mu.Lock()
	c.decoding++
	c.maxDecoding = max(c.maxDecoding, c.decoding)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.decoding--
		c.mu.Unlock()
	}()
	if c.decode > 0 {
		select {
		case <-c.clk.After(c.decode):
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s: decoding: %w", node.Name, ctx.Err())
		}
	}
	return &points.Batch{Node: node.Name, NodePoint: points.Point{Timestamp: c.clk.Now().UnixNano(), CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}, nil
}

func (c *clockClient) callsOf(node string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.calls[node]...)
}

// TestDeadlinesFollowTheClock: request timeouts and the cycle's deadline
// are kept on the scraper's clock, so a fake clock ends them, and a
// timed-out request fails with context.DeadlineExceeded as on the real
// clock.
func TestDeadlinesFollowTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clocktesting.NewFakeClock(epoch)
		client := newClockClient(clk, 30*time.Millisecond, map[string]time.Time{"dead-1": epoch})
		var gotErr error
		s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second,
			Classify: func(err error) string {
				gotErr = err
				return "timeout"
			}},
			nodes("dead-1", "node-1"), client, &fakeSink{}, nil, clk)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan Result, 1)
		go func() { done <- s.Scrape(ctx) }()

		stepper{clk}.advance(9900*time.Millisecond, 100*time.Millisecond)
		select {
		case res := <-done:
			t.Fatalf("cycle ended %v before the dead node's 10s timeout: %+v", clk.Since(epoch), res)
		default:
		}
		stepper{clk}.advance(200*time.Millisecond, 100*time.Millisecond)
		select {
		case res := <-done:
			if want := (Result{Nodes: 2, Succeeded: 1, Failed: 1, Duration: 10 * time.Second}); res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
			if !errors.Is(gotErr, context.DeadlineExceeded) {
				t.Errorf("the timed-out request failed with %v, want context.DeadlineExceeded", gotErr)
			}
		default:
			t.Fatalf("cycle still running %v after its start, past the 10s request timeout on the fake clock", clk.Since(epoch))
		}
	})
}

// cycleSink records, for each node, the cycles (counted by Prune) in
// which it was stored, and the fake time at which each cycle ended.
type cycleSink struct {
	clk *clocktesting.FakeClock

	mu     sync.Mutex
	stored map[string][]int
	ends   []time.Time
}

func newCycleSink(clk *clocktesting.FakeClock) *cycleSink {
	return &cycleSink{clk: clk, stored: map[string][]int{}}
}

func (c *cycleSink) Store(b *points.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stored[b.Node] = append(c.stored[b.Node], len(c.ends))
}

func (c *cycleSink) Forget(string) {}

func (c *cycleSink) Prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ends = append(c.ends, c.clk.Now())
}

// cycleOf is the cycle a request started at t belongs to: no request
// starts at the instant its cycle ends, so one that starts when a cycle
// ends belongs to the next.
func (c *cycleSink) cycleOf(t time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, end := range c.ends {
		if !end.After(t) {
			n++
		}
	}
	return n
}

// TestHangingNodesDoNotStarveHealthyOnes: with three times as many nodes
// that stop answering as decode slots, at the default timeout and a 15s
// resolution, every node that answers is scraped in every cycle, the
// hanging ones are tried in every cycle too, and no more bodies than
// slots are decoded at once (each takes 300ms here).
func TestHangingNodesDoNotStarveHealthyOnes(t *testing.T) {
	const parallelism = 4
	tests := []struct {
		name string
		// hangAfter is when, after the start, 12 nodes stop answering.
		hangAfter time.Duration
	}{
		{name: "hanging from the start", hangAfter: 0},
		{name: "hanging from the fifth cycle on", hangAfter: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var healthy, names []string
				hangFrom := map[string]time.Time{}
				for i := range 3 * parallelism {
					n := fmt.Sprintf("dead-%02d", i)
					names = append(names, n)
					hangFrom[n] = epoch.Add(tt.hangAfter)
				}
				for i := range 20 {
					n := fmt.Sprintf("node-%02d", i)
					names = append(names, n)
					healthy = append(healthy, n)
				}
				client, sink, stop := runWithHangingNodes(names, hangFrom, parallelism, tt.hangAfter+3*time.Minute,
					func(c *clockClient) { c.decode = 300 * time.Millisecond })
				defer stop()

				sink.mu.Lock()
				cycles := len(sink.ends)
				stored := sink.stored
				sink.mu.Unlock()
				if cycles < 10 {
					t.Errorf("%d cycles in %v at a 15s resolution, want at least 10", cycles, tt.hangAfter+3*time.Minute)
				}
				for _, n := range healthy {
					seen := map[int]bool{}
					for _, c := range stored[n] {
						seen[c] = true
					}
					for c := range cycles {
						if !seen[c] {
							t.Errorf("healthy node %s not stored in cycle %d of %d", n, c, cycles)
						}
					}
				}
				// Each hanging node is tried in every cycle once it
				// hangs (its request ends with its timeout, before the
				// next cycle).
				first := sink.cycleOf(epoch.Add(tt.hangAfter))
				for n := range hangFrom {
					tried := map[int]bool{}
					for _, at := range client.callsOf(n) {
						tried[sink.cycleOf(at)] = true
					}
					for c := first; c < cycles; c++ {
						if !tried[c] {
							t.Errorf("hanging node %s not tried in cycle %d", n, c)
						}
					}
				}
				client.mu.Lock()
				defer client.mu.Unlock()
				if client.maxDecoding > parallelism {
					t.Errorf("%d bodies decoded at once, want at most Parallelism, %d", client.maxDecoding, parallelism)
				}
				if client.maxDecoding < 2 {
					t.Errorf("at most %d body decoded at once: the test does not load the slots", client.maxDecoding)
				}
			})
		})
	}
}

// TestNodeAnsweringSlowlyDelaysNoOne: a node that answers in 7s of a 10s
// timeout, with a single decode slot, is scraped in every cycle with its
// full timeout and holds no slot while it is awaited: the others start
// at their phase (all at once here) and are stored at once.
func TestNodeAnsweringSlowlyDelaysNoOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := []string{"sluggish"}
		for i := range 8 {
			names = append(names, fmt.Sprintf("node-%d", i))
		}
		clk := clocktesting.NewFakeClock(epoch)
		client := newClockClient(clk, 40*time.Millisecond, nil)
		client.latencyOf = map[string]time.Duration{"sluggish": 7 * time.Second}
		s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, Parallelism: 1,
			Classify: func(error) string { return "other" }}, nodes(names...), client, newCycleSink(clk), nil, clk)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		for i := range 3 {
			start := clk.Now()
			done := make(chan Result, 1)
			go func() { done <- s.Scrape(ctx) }()
			stepper{clk}.advance(15*time.Second, 20*time.Millisecond)
			res := <-done
			if want := (Result{Nodes: 9, Succeeded: 9, Duration: 7 * time.Second}); res != want {
				t.Errorf("cycle %d: %+v, want %+v", i, res, want)
			}
			for _, n := range names {
				calls := client.callsOf(n)
				if at := calls[len(calls)-1].Sub(start); at != 0 {
					t.Errorf("cycle %d: %s started %v after the cycle's start, want at once", i, n, at)
				}
			}
			if st, _ := s.NodeStatus("sluggish"); st.Reason != "" || !st.Slow || st.Lane() != "slow" {
				t.Errorf("cycle %d: sluggish node's status %+v, want no failure, slow", i, st)
			}
		}
	})
}

// TestWarmAfterTwoCycles: the scraper is warm (every node that answered
// has rates) once the start-up cycle and the next have ended: its
// follow-up seconds later, or the first regular cycle a resolution later
// without one.
func TestWarmAfterTwoCycles(t *testing.T) {
	tests := []struct {
		name     string
		followUp time.Duration
		// notYet and warmAt are times after the start to look.
		notYet, warmAt time.Duration
	}{
		{name: "with a follow-up", followUp: 2 * time.Second, notYet: time.Second, warmAt: 3 * time.Second},
		{name: "without a follow-up", notYet: 14 * time.Second, warmAt: 16 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clocktesting.NewFakeClock(epoch)
				s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, FollowUp: tt.followUp},
					nodes("node-1", "node-2", "node-3"), newClockClient(clk, 40*time.Millisecond, nil), newCycleSink(clk), nil, clk)
				if warm, n := s.Warm(); warm || n != 0 {
					t.Errorf("before Run: warm %v with %d nodes, want not warm, 0", warm, n)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go s.Run(ctx)
				stepper{clk}.advance(tt.notYet, 20*time.Millisecond)
				if warm, n := s.Warm(); warm || n != 3 {
					t.Errorf("%v after the start: warm %v with %d nodes, want not warm, 3", tt.notYet, warm, n)
				}
				stepper{clk}.advance(tt.warmAt-tt.notYet, 20*time.Millisecond)
				if warm, n := s.Warm(); !warm || n != 3 {
					t.Errorf("%v after the start: warm %v with %d nodes, want warm, 3", tt.warmAt, warm, n)
				}
			})
		})
	}
}

// TestStartupCycleWaitsForSlowAnswers: the start-up cycle waits for a
// node answering in 7s, with one decode slot, and the others are scraped
// in it too.
func TestStartupCycleWaitsForSlowAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := []string{"sluggish", "node-1", "node-2", "node-3"}
		clk := clocktesting.NewFakeClock(epoch)
		client := newClockClient(clk, 40*time.Millisecond, nil)
		client.latencyOf = map[string]time.Duration{"sluggish": 7 * time.Second}
		sink := newCycleSink(clk)
		s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, Parallelism: 1, FollowUp: 2 * time.Second},
			nodes(names...), client, sink, nil, clk)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.Run(ctx)
		stepper{clk}.advance(8*time.Second, 20*time.Millisecond)
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, n := range names {
			if got := sink.stored[n]; len(got) == 0 || got[0] != 0 {
				t.Errorf("%s stored in cycles %v, want the start-up cycle first", n, got)
			}
		}
	})
}

// TestStartupRatesDespiteHangingNodes: a server (re)started among nodes
// that hang, three times as many as its decode slots, serves rates for
// every node that answers within about a resolution (when requests held
// slots while awaited, 12 hanging nodes and 4 slots at 10s made the
// start-up cycle take 30s, so no follow-up, hence no rate, came before).
// The nodes are interleaved as an informer's listing mixes them.
func TestStartupRatesDespiteHangingNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const parallelism = 4
		var healthy, names []string
		hangFrom := map[string]time.Time{}
		for i := range 20 {
			n := fmt.Sprintf("node-%02d", i)
			names = append(names, n)
			healthy = append(healthy, n)
			if i < 3*parallelism {
				d := fmt.Sprintf("dead-%02d", i)
				names = append(names, d)
				hangFrom[d] = epoch
			}
		}
		const within = 20 * time.Second
		_, sink, stop := runWithHangingNodes(names, hangFrom, parallelism, within)
		defer stop()
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, n := range healthy {
			if got := len(sink.stored[n]); got < 2 {
				t.Errorf("%s stored %d times in the first %v, want 2 (a rate)", n, got, within)
			}
		}
	})
}

// runWithHangingNodes runs a scraper as the server configures it by default
// (15s resolution, 10s timeout, a 3.75s spread, a 2s follow-up) over names,
// each node answering in 40ms or, from the time hangFrom gives it on, never,
// for total on a fake clock, and leaves it running (a cancelled cycle would
// end in the sink) until stop; it must be called inside a synctest bubble.
func runWithHangingNodes(names []string, hangFrom map[string]time.Time, parallelism int, total time.Duration, tune ...func(*clockClient)) (_ *clockClient, _ *cycleSink, stop func()) {
	clk := clocktesting.NewFakeClock(epoch)
	client := newClockClient(clk, 40*time.Millisecond, hangFrom)
	for _, f := range tune {
		f(client)
	}
	sink := newCycleSink(clk)
	s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, Parallelism: parallelism,
		Spread: 3750 * time.Millisecond, FollowUp: 2 * time.Second},
		nodes(names...), client, sink, nil, clk)
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	stepper{clk}.advance(total, 50*time.Millisecond)
	return client, sink, cancel
}
