package kubelet

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/scraper/gate"
)

// TestDecodeSlotTakenAfterTheHeaders: a request waiting for a kubelet's
// answer holds no decode slot, so a quick kubelet is decoded while a slow
// one keeps everyone's only slot free; and a kubelet that answered but
// found no slot before its deadline fails no_decode_slot, not timeout.
func TestDecodeSlotTakenAfterTheHeaders(t *testing.T) {
	summary := readTestdata(t, "summary-pods.json")
	slow, quick := &kubelet{}, &kubelet{}
	slow.set(summaryPath, answer{200, summary, 2 * time.Second})
	quick.set(summaryPath, answer{200, summary, 0})
	slowSrv, quickSrv := httptest.NewTLSServer(slow), httptest.NewTLSServer(quick)
	defer slowSrv.Close()
	defer quickSrv.Close()
	c, _ := newTestClient(t, EndpointSummary, nil)
	g := gate.New(1)
	ctx := gate.With(context.Background(), g)

	slowDone := make(chan error, 1)
	go func() {
		_, err := c.GetMetrics(ctx, nodeFor(t, slowSrv))
		slowDone <- err
	}()
	// The slow kubelet has the request by now and answers in 2s.
	deadline := time.Now().Add(time.Second)
	for slow.count(summaryPath) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := c.GetMetrics(qctx, nodeFor(t, quickSrv)); err != nil {
		t.Fatalf("quick kubelet, while a slow one is awaited with the only slot free: %v", err)
	}
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Errorf("quick kubelet took %v: it waited for the slow one's answer", took)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("slow kubelet, answering within its timeout: %v", err)
	}

	// Every slot held elsewhere: the quick kubelet answers, its body
	// waits for a slot until the request's deadline.
	if err := g.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	_, err := c.GetMetrics(short, nodeFor(t, quickSrv))
	if got := ReasonOf(err); got != ReasonNoDecodeSlot {
		t.Errorf("reason %s (%v), want %s", got, err, ReasonNoDecodeSlot)
	}
}
