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

	mu sync.Mutex
	// calls holds the fake time of each request's start, per node.
	calls       map[string][]time.Time
	inFlight    int
	maxInFlight int
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
		return &points.Batch{Node: node.Name, NodePoint: points.Point{Timestamp: c.clk.Now().UnixNano(), CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("node %s: %w", node.Name, ctx.Err())
	}
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
// that stop answering as request slots, at the default timeout and a 15s
// resolution, every node that answers is scraped in every cycle, but for
// the one cycle in which those nodes first hang, and no hanging node waits
// long for its next try.
func TestHangingNodesDoNotStarveHealthyOnes(t *testing.T) {
	const parallelism = 4
	tests := []struct {
		name string
		// hangAfter is when, after the start, 12 nodes stop answering.
		hangAfter time.Duration
		// mayMiss is how many cycles healthy nodes may go unscraped in,
		// all in the cycle when the nodes stop answering or the next.
		mayMiss int
	}{
		{name: "hanging from the start", hangAfter: 0, mayMiss: 0},
		{name: "hanging from the fifth cycle on", hangAfter: 90 * time.Second, mayMiss: 1},
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
				client, sink, stop := runWithHangingNodes(names, hangFrom, parallelism, tt.hangAfter+3*time.Minute)
				defer stop()

				sink.mu.Lock()
				cycles := len(sink.ends)
				stored := sink.stored
				sink.mu.Unlock()
				if cycles < 10 {
					t.Errorf("%d cycles in %v at a 15s resolution, want at least 10", cycles, tt.hangAfter+3*time.Minute)
				}
				// The cycle in which the nodes first hang.
				first := sink.cycleOf(epoch.Add(tt.hangAfter))
				missedIn := map[int][]string{}
				for _, n := range healthy {
					seen := map[int]bool{}
					for _, c := range stored[n] {
						seen[c] = true
					}
					for c := range cycles {
						if !seen[c] {
							missedIn[c] = append(missedIn[c], n)
						}
					}
				}
				for c, missed := range missedIn {
					if len(missedIn) > tt.mayMiss || c < first || c > first+1 {
						t.Errorf("healthy nodes not scraped in cycle %d of %d (nodes hang from cycle %d on): %v", c, cycles, first, missed)
					}
				}
				// Each hanging node is tried in every four cycles once the
				// nodes hang: the slow lane starts five requests a cycle
				// (its own slot once, the four fast slots once the fast
				// nodes have started), twelve take three cycles, and a
				// fourth is for the cycle after they first hang.
				for n := range hangFrom {
					tried := map[int]bool{}
					for _, at := range client.callsOf(n) {
						tried[sink.cycleOf(at)] = true
					}
					for c := first; c+4 <= cycles; c++ {
						if !tried[c] && !tried[c+1] && !tried[c+2] && !tried[c+3] {
							t.Errorf("hanging node %s not tried in cycles %d to %d", n, c, c+3)
							break
						}
					}
				}
				client.mu.Lock()
				defer client.mu.Unlock()
				if limit := parallelism + 1; client.maxInFlight > limit {
					t.Errorf("%d requests in flight at once, want at most Parallelism plus one slow slot, %d", client.maxInFlight, limit)
				}
			})
		})
	}
}

// TestNodeAnsweringSlowlyMovesToTheSlowLane: a node that answers in 7s of
// a 10s timeout keeps the only fast slot for half the timeout while other
// nodes wait, is given up then, and from the next cycle on is scraped in
// the slow lane with the full timeout while the others are scraped at
// once.
func TestNodeAnsweringSlowlyMovesToTheSlowLane(t *testing.T) {
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

		want := []struct {
			res Result
			// sluggishAt is when the sluggish node's request starts,
			// after the cycle's start.
			sluggishAt time.Duration
			failing    string
		}{
			// The fast lane starts it first; the others wait behind it
			// until it is given up.
			{Result{Nodes: 9, Succeeded: 8, Failed: 1, Duration: 5*time.Second + 8*40*time.Millisecond}, 0, ReasonSlow},
			// The slow lane's own slot: the others are not delayed.
			{Result{Nodes: 9, Succeeded: 9, Duration: 7 * time.Second}, 0, ""},
			{Result{Nodes: 9, Succeeded: 9, Duration: 7 * time.Second}, 0, ""},
		}
		for i, w := range want {
			start := clk.Now()
			done := make(chan Result, 1)
			go func() { done <- s.Scrape(ctx) }()
			stepper{clk}.advance(15*time.Second, 20*time.Millisecond)
			res := <-done
			if res != w.res {
				t.Errorf("cycle %d: %+v, want %+v", i, res, w.res)
			}
			calls := client.callsOf("sluggish")
			if got := calls[len(calls)-1].Sub(start); got != w.sluggishAt {
				t.Errorf("cycle %d: sluggish node started %v after the cycle, want %v", i, got, w.sluggishAt)
			}
			for j := range 8 {
				n := fmt.Sprintf("node-%d", j)
				calls := client.callsOf(n)
				if at := calls[len(calls)-1].Sub(start); i > 0 && at > 8*40*time.Millisecond {
					t.Errorf("cycle %d: %s started %v after the cycle's start, behind the sluggish node", i, n, at)
				}
			}
			s.mu.Lock()
			got := s.nodeStates["sluggish"].failing
			s.mu.Unlock()
			if got != w.failing {
				t.Errorf("cycle %d: sluggish node failing %q, want %q", i, got, w.failing)
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

// TestStartupCycleWaitsForSlowAnswers: the start-up cycle gives no fast
// request up at half the timeout (its first TLS handshakes may all be
// slow, and it has several resolutions): a node answering in 7s with
// others waiting behind it is scraped in it.
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
// that hang, three times as many as its slots, serves rates for every node
// that answers within about a resolution, not after every hanging node has
// held a slot for the whole timeout (12 hanging nodes, 4 slots, 10s: the
// start-up cycle took 30s, so no follow-up, hence no rate, came before).
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
func runWithHangingNodes(names []string, hangFrom map[string]time.Time, parallelism int, total time.Duration) (_ *clockClient, _ *cycleSink, stop func()) {
	clk := clocktesting.NewFakeClock(epoch)
	client := newClockClient(clk, 40*time.Millisecond, hangFrom)
	sink := newCycleSink(clk)
	s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, Parallelism: parallelism,
		Spread: 3750 * time.Millisecond, FollowUp: 2 * time.Second},
		nodes(names...), client, sink, nil, clk)
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	stepper{clk}.advance(total, 50*time.Millisecond)
	return client, sink, cancel
}
