package scraper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// observed is one call to a NodeObserver.
type observed struct {
	Node      string
	Recovered bool
	Failures  int
	Reason    string
}

// recordingObserver remembers every call.
type recordingObserver struct {
	mu    sync.Mutex
	calls []observed
}

func (o *recordingObserver) NodeFailed(node *corev1.Node, failures int, reason string, _ error) {
	o.mu.Lock()
	o.calls = append(o.calls, observed{Node: node.Name, Failures: failures, Reason: reason})
	o.mu.Unlock()
}

func (o *recordingObserver) NodeRecovered(node *corev1.Node, failures int) {
	o.mu.Lock()
	o.calls = append(o.calls, observed{Node: node.Name, Recovered: true, Failures: failures})
	o.mu.Unlock()
}

func (o *recordingObserver) take() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls
	o.calls = nil
	return c
}

// TestRecordAttempts: what a sequence of attempts leaves in a node's
// status and tells the observer, at a 10s timeout.
func TestRecordAttempts(t *testing.T) {
	ok := &points.Batch{Node: "worker-7", NodePoint: points.Point{Timestamp: 1, CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}
	timeout := fmt.Errorf("scraping node %q: %w", "worker-7", context.DeadlineExceeded)
	refused := errors.New(`scraping node "worker-7" at 10.0.3.7:10250 /metrics/resource: connection refused`)
	// Each attempt begins a resolution (15 s) after the one before.
	at := func(i int) time.Time { return epoch.Add(time.Duration(i) * 15 * time.Second) }
	tests := []struct {
		name     string
		attempts []attempt
		want     NodeStatus
		wantTold []observed
	}{
		{
			name:     "healthy",
			attempts: []attempt{{began: at(0), held: 180 * time.Millisecond, batch: ok}, {began: at(1), held: 210 * time.Millisecond, batch: ok}},
			want:     NodeStatus{LastAttempt: at(1), LastSuccess: at(1).Add(210 * time.Millisecond), Duration: 210 * time.Millisecond},
		},
		{
			name: "fails twice, then answers",
			attempts: []attempt{
				{began: at(0), held: 150 * time.Millisecond, batch: ok},
				{began: at(1), held: 10 * time.Second, err: timeout},
				{began: at(2), held: 3 * time.Millisecond, err: refused},
				{began: at(3), held: 400 * time.Millisecond, batch: ok},
			},
			want: NodeStatus{LastAttempt: at(3), LastSuccess: at(3).Add(400 * time.Millisecond), LastFailure: at(2).Add(3 * time.Millisecond),
				Duration: 400 * time.Millisecond, LastError: refused},
			wantTold: []observed{{Failures: 1, Reason: "other"}, {Failures: 2, Reason: "other"}, {Recovered: true, Failures: 2}},
		},
		{
			name: "still failing, near the timeout",
			attempts: []attempt{
				{began: at(0), held: 10 * time.Second, err: timeout},
				{began: at(1), held: 10 * time.Second, err: timeout},
			},
			want: NodeStatus{LastAttempt: at(1), LastFailure: at(1).Add(10 * time.Second), Duration: 10 * time.Second,
				ConsecutiveFailures: 2, Reason: "other", LastError: timeout, Slow: true},
			wantTold: []observed{{Failures: 1, Reason: "other"}, {Failures: 2, Reason: "other"}},
		},
		{
			name: "a request cut by the scraper's stop counts no failure and tells nothing",
			attempts: []attempt{
				{began: at(0), held: 10 * time.Second, err: timeout},
				{began: at(2), held: 2 * time.Second, err: context.Canceled, cut: true},
			},
			want: NodeStatus{LastAttempt: at(0), LastFailure: at(0).Add(10 * time.Second), Duration: 10 * time.Second,
				ConsecutiveFailures: 1, Reason: "other", LastError: timeout, Slow: true},
			wantTold: []observed{{Failures: 1, Reason: "other"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &recordingObserver{}
			s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, Observer: obs},
				nodes(), nil, &fakeSink{}, nil, clocktesting.NewFakeClock(epoch))
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-7"}}
			st := &nodeState{}
			s.nodeStates[node.Name] = st
			for _, a := range tt.attempts {
				s.land(job{node: node, state: st}, a)
			}
			got, found := s.NodeStatus(node.Name)
			if !found {
				t.Fatal("no status for worker-7")
			}
			tt.want.Node = node.Name
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			for i := range tt.wantTold {
				tt.wantTold[i].Node = node.Name
			}
			if diff := cmp.Diff(tt.wantTold, obs.take()); diff != "" {
				t.Errorf("observer calls (-want +got):\n%s", diff)
			}
		})
	}
}

// locatingClient is a fakeClient that says where it reaches each node.
type locatingClient struct {
	*fakeClient
}

func (locatingClient) Locate(node *corev1.Node) (string, string) {
	if node.Name == "worker-3" {
		return "", "/metrics/resource"
	}
	return "10.0.3.1:10250", "/stats/summary"
}

// TestNodeStatusesOverCycles: the statuses a real cycle leaves, the failing
// filter, one node, the client's address and endpoint, and a deleted
// node's status gone with it.
func TestNodeStatusesOverCycles(t *testing.T) {
	client := locatingClient{&fakeClient{fail: map[string]error{"worker-3": errBoom}}}
	obs := &recordingObserver{}
	s := New(Config{Resolution: 2 * time.Second, Timeout: time.Second, Observer: obs},
		nodes("worker-1", "worker-2", "worker-3"), client, &fakeSink{}, nil, clock.RealClock{})
	before := time.Now()
	for range 2 {
		if res := s.Scrape(context.Background()); res.Succeeded != 2 || res.Failed != 1 {
			t.Fatalf("cycle: %+v, want 2 succeeded and 1 failed", res)
		}
	}
	all := s.NodeStatuses(false)
	var names []string
	for _, n := range all {
		names = append(names, n.Node)
		if n.LastAttempt.Before(before) || n.LastAttempt.After(time.Now()) {
			t.Errorf("%s: last attempt %v, not during the test", n.Node, n.LastAttempt)
		}
	}
	if diff := cmp.Diff([]string{"worker-1", "worker-2", "worker-3"}, names); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	failing := s.NodeStatuses(true)
	if len(failing) != 1 || failing[0].Node != "worker-3" || failing[0].ConsecutiveFailures != 2 ||
		!errors.Is(failing[0].LastError, errBoom) || failing[0].Address != "" || failing[0].Endpoint != "/metrics/resource" {
		t.Errorf("failing nodes: %+v, want worker-3 alone, 2 failures, no address", failing)
	}
	w1, ok := s.NodeStatus("worker-1")
	if !ok || w1.LastSuccess.IsZero() || w1.ConsecutiveFailures != 0 || w1.Address != "10.0.3.1:10250" || w1.Endpoint != "/stats/summary" || w1.Lane() != "fast" {
		t.Errorf("worker-1: %+v, found %v", w1, ok)
	}
	if diff := cmp.Diff([]observed{{"worker-3", false, 1, "other"}, {"worker-3", false, 2, "other"}}, obs.take()); diff != "" {
		t.Errorf("observer calls (-want +got):\n%s", diff)
	}
	s.ForgetNode("worker-3")
	if _, ok := s.NodeStatus("worker-3"); ok {
		t.Error("a deleted node still has a status")
	}
	if _, ok := s.NodeStatus("worker-9"); ok {
		t.Error("a node never listed has a status")
	}
}
