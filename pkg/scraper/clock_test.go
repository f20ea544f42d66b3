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
// latency on the clock, or never when it hangs (until ctx ends).
type clockClient struct {
	clk     *clocktesting.FakeClock
	latency time.Duration
	hang    map[string]bool

	mu sync.Mutex
	// calls holds the fake time of each request's start, per node.
	calls       map[string][]time.Time
	inFlight    int
	maxInFlight int
}

func newClockClient(clk *clocktesting.FakeClock, latency time.Duration, hang map[string]bool) *clockClient {
	return &clockClient{clk: clk, latency: latency, hang: hang, calls: map[string][]time.Time{}}
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
	if !c.hang[node.Name] {
		answer = c.clk.After(c.latency)
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
		client := newClockClient(clk, 30*time.Millisecond, map[string]bool{"dead-1": true})
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
