package scraper

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// TestLaneVerdict: which lane an attempt puts a node in, and whether it
// goes first next cycle, at a 10s timeout.
func TestLaneVerdict(t *testing.T) {
	ok := &points.Batch{Node: "node-1", NodePoint: points.Point{Timestamp: 1, CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}
	tests := []struct {
		name        string
		was         nodeState
		a           attempt
		wantSlow    bool
		wantOverdue bool
		wantFailing string
	}{
		{name: "quick answer", was: nodeState{slow: true}, a: attempt{held: 80 * time.Millisecond, batch: ok}},
		{name: "answer in 6s", a: attempt{held: 6 * time.Second, batch: ok}, wantSlow: true},
		{name: "quick failure stays fast", a: attempt{held: 3 * time.Millisecond, err: errBoom}, wantFailing: "other"},
		{name: "timed out", a: attempt{held: 10 * time.Second, err: errBoom}, wantSlow: true, wantFailing: "other"},
		{name: "given up at half the timeout", a: attempt{held: 5 * time.Second, err: errBoom, demoted: true},
			wantSlow: true, wantFailing: ReasonSlow},
		{name: "cut early by the cycle's end", was: nodeState{slow: true}, a: attempt{held: 2 * time.Second, err: errBoom, cut: true},
			wantSlow: true, wantOverdue: true, wantFailing: ReasonSkipped},
		{name: "cut early, fast node", a: attempt{held: 2 * time.Second, err: errBoom, cut: true},
			wantOverdue: true, wantFailing: ReasonSkipped},
		{name: "cut after half the timeout", a: attempt{held: 7 * time.Second, err: errBoom, cut: true},
			wantSlow: true, wantOverdue: true, wantFailing: ReasonSkipped},
		{name: "not started", a: attempt{skipped: true}, wantOverdue: true, wantFailing: ReasonSkipped},
		{name: "a skip keeps the failure's reason", was: nodeState{failing: "timeout", slow: true}, a: attempt{skipped: true},
			wantSlow: true, wantOverdue: true, wantFailing: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(epoch)
			s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second}, nodes(), nil, &fakeSink{}, nil, clk)
			st := tt.was
			s.land(job{node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, state: &st}, tt.a)
			if st.slow != tt.wantSlow || st.overdue != tt.wantOverdue || st.failing != tt.wantFailing {
				t.Errorf("slow %v, overdue %v, failing %q; want %v, %v, %q", st.slow, st.overdue, st.failing, tt.wantSlow, tt.wantOverdue, tt.wantFailing)
			}
		})
	}
}
