package scraper

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// scriptClient answers each node's n-th request (0 first) as its script
// says, after the delay it gives, honouring ctx.
type scriptClient struct {
	script func(node string, n int) (time.Duration, error)

	mu    sync.Mutex
	calls map[string]int
}

func (c *scriptClient) GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error) {
	c.mu.Lock()
	n := c.calls[node.Name]
	c.calls[node.Name]++
	c.mu.Unlock()
	d, err := c.script(node.Name, n)
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, fmt.Errorf("node %s: %w", node.Name, ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	return &points.Batch{Node: node.Name, NodePoint: points.Point{Timestamp: 1, Has: points.HasCPU}}, nil
}

// forgetCounter is a mapSink that counts the Forget calls per node.
type forgetCounter struct {
	mapSink
	forgets map[string]int
}

func (f *forgetCounter) Forget(node string) {
	f.mapSink.Forget(node)
	f.mu.Lock()
	f.forgets[node]++
	f.mu.Unlock()
}

func (f *forgetCounter) state(node string) (stored bool, forgets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, stored = f.stored[node]
	return stored, f.forgets[node]
}

func newForgetCounter() *forgetCounter {
	return &forgetCounter{mapSink: mapSink{stored: map[string]points.Point{}}, forgets: map[string]int{}}
}

// TestFailedRequestsMakeANodeStale: a node's last good points are served
// until StaleAfter/Resolution requests in a row have failed (two at the
// defaults), then dropped once, and served again after its next success.
func TestFailedRequestsMakeANodeStale(t *testing.T) {
	tests := []struct {
		name       string
		staleAfter time.Duration
		// failures is how many failed requests drop the node.
		failures int
	}{
		{name: "defaults: two resolutions and the timeout", failures: 2},
		{name: "three resolutions", staleAfter: 45 * time.Second, failures: 3},
		{name: "less than a resolution: the first failure", staleAfter: 5 * time.Second, failures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const failing = 4
			client := &scriptClient{calls: map[string]int{}, script: func(node string, n int) (time.Duration, error) {
				if node == "bad" && n >= 1 && n <= failing {
					return 0, errBoom
				}
				return 0, nil
			}}
			sink := newForgetCounter()
			s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, StaleAfter: tt.staleAfter},
				nodes("bad", "good"), client, sink, nil, clock.RealClock{})
			ctx := context.Background()
			for cycle := range failing + 2 {
				s.Scrape(ctx)
				stored, forgets := sink.state("bad")
				failed := min(max(cycle, 0), failing) // requests 1..failing fail
				if cycle == failing+1 {
					failed = 0
				}
				wantStored := failed < tt.failures
				wantForgets := 0
				if cycle >= tt.failures {
					wantForgets = 1
				}
				if stored != wantStored || forgets != wantForgets {
					t.Errorf("after cycle %d (%d failures in a row): stored %v, forgotten %d times; want %v, %d",
						cycle, failed, stored, forgets, wantStored, wantForgets)
				}
				if good, n := sink.state("good"); !good || n != 0 {
					t.Errorf("after cycle %d: the healthy node stored %v, forgotten %d times", cycle, good, n)
				}
			}
		})
	}
}

// TestNodeNotTriedIsNotDropped: cycles that start no request to a node,
// because its last one is still in flight, count no failure: a node whose
// requests take 2.5 resolutions and fail is dropped after its second
// failed request (StaleAfter two resolutions), not after two cycles.
func TestNodeNotTriedIsNotDropped(t *testing.T) {
	const resolution = 200 * time.Millisecond
	client := &scriptClient{calls: map[string]int{}, script: func(node string, n int) (time.Duration, error) {
		if node == "sluggish" && n >= 1 {
			return 500 * time.Millisecond, errBoom
		}
		return 0, nil
	}}
	sink := newForgetCounter()
	s := New(Config{Resolution: resolution, Timeout: 10 * time.Second, StaleAfter: 2 * resolution},
		nodes("sluggish", "good"), client, sink, nil, clock.RealClock{})
	ctx := context.Background()
	s.Scrape(ctx) // both stored
	// The second request starts in the next cycle and fails 2.5 cycles
	// later; the cycles in between start none.
	for i := range 3 {
		res := s.Scrape(ctx)
		if stored, forgets := sink.state("sluggish"); !stored || forgets != 0 {
			t.Fatalf("cycle %d after the first (%+v): sluggish stored %v, forgotten %d times; want it served: no request of it has failed yet", i+1, res, stored, forgets)
		}
	}
	waitFor(t, func() bool {
		st, _ := s.NodeStatus("sluggish")
		return st.ConsecutiveFailures == 1
	}, "the first failure to land")
	if stored, forgets := sink.state("sluggish"); !stored || forgets != 0 {
		t.Fatalf("after one failed request: stored %v, forgotten %d times; want it served", stored, forgets)
	}
	s.Scrape(ctx) // starts the third request, which fails too
	waitFor(t, func() bool {
		st, _ := s.NodeStatus("sluggish")
		return st.ConsecutiveFailures == 2
	}, "the second failure to land")
	if stored, forgets := sink.state("sluggish"); stored || forgets != 1 {
		t.Errorf("after two failed requests: stored %v, forgotten %d times; want it dropped once", stored, forgets)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// switchLister lists all its nodes until drop is set, then all but that
// one (a node whose labels no longer match the selector).
type switchLister struct {
	fakeLister
	mu   sync.Mutex
	drop string
}

func (l *switchLister) List(sel labels.Selector) ([]*corev1.Node, error) {
	all, err := l.fakeLister.List(sel)
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*corev1.Node
	for _, n := range all {
		if n.Name != l.drop {
			out = append(out, n)
		}
	}
	return out, err
}

// TestUnlistedNodeDropped: a node the lister stops listing is dropped from
// the sink by the next cycle, as staleness by age used to do: no request
// will fail for it.
func TestUnlistedNodeDropped(t *testing.T) {
	sink := newForgetCounter()
	lister := &switchLister{fakeLister: nodes("kept", "unselected")}
	s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second}, lister, &fakeClient{}, sink, nil, clock.RealClock{})
	ctx := context.Background()
	s.Scrape(ctx)
	if stored, _ := sink.state("unselected"); !stored {
		t.Fatal("the node was not stored while listed")
	}
	lister.mu.Lock()
	lister.drop = "unselected"
	lister.mu.Unlock()
	s.Scrape(ctx)
	if stored, forgets := sink.state("unselected"); stored || forgets != 1 {
		t.Errorf("after a cycle that did not list it: stored %v, forgotten %d times; want dropped once", stored, forgets)
	}
	if _, ok := s.NodeStatus("unselected"); ok {
		t.Error("the scraper still has a status for a node no longer listed")
	}
	if stored, forgets := sink.state("kept"); !stored || forgets != 0 {
		t.Errorf("the listed node: stored %v, forgotten %d times", stored, forgets)
	}
}
