package scraper

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// TestLandVerdict: what an attempt leaves of a node's failure, at a 10s
// timeout: a request the scraper's stop cut short changes nothing, and
// every landing ends the node's request in flight.
func TestLandVerdict(t *testing.T) {
	ok := &points.Batch{Node: "node-1", NodePoint: points.Point{Timestamp: 1, CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}
	tests := []struct {
		name        string
		was         nodeState
		a           attempt
		want        outcome
		wantFailing string
	}{
		{name: "quick answer", was: nodeState{failing: "timeout"}, a: attempt{held: 80 * time.Millisecond, batch: ok}, want: outcomeOK},
		{name: "answer in 6s", a: attempt{held: 6 * time.Second, batch: ok}, want: outcomeOK},
		{name: "quick failure", a: attempt{held: 3 * time.Millisecond, err: errBoom}, want: outcomeFailed, wantFailing: "other"},
		{name: "timed out", a: attempt{held: 10 * time.Second, err: context.DeadlineExceeded}, want: outcomeFailed, wantFailing: "other"},
		{name: "cut by the scraper's stop keeps the failure's reason", was: nodeState{failing: "timeout"},
			a: attempt{held: 2 * time.Second, err: context.Canceled, cut: true}, want: outcomeCut, wantFailing: "timeout"},
		{name: "cut, healthy node", a: attempt{held: 2 * time.Second, err: context.Canceled, cut: true}, want: outcomeCut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(epoch)
			s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second}, nodes(), nil, &fakeSink{}, nil, clk)
			st := tt.was
			st.inFlight = true
			got := s.land(job{node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, state: &st}, tt.a)
			if got != tt.want || st.failing != tt.wantFailing || st.inFlight {
				t.Errorf("outcome %v, failing %q, in flight %v; want %v, %q, false", got, st.failing, st.inFlight, tt.want, tt.wantFailing)
			}
		})
	}
}
