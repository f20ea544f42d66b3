package scraper

import (
	"context"
	"errors"
	"time"

	"k8s.io/utils/clock"
)

// Clock is the scraper's time source: clock.RealClock, or a fake one from
// k8s.io/utils/clock/testing in tests. Every wait of the scraper (node
// phases, request timeouts, cycle deadlines, the resolution ticker) is on
// it.
type Clock = clock.WithTickerAndDelayedExecution

// withDeadline is context.WithDeadline on the scraper's clock. On the real
// clock it is exactly that, so the kubelet client's dialer and connections
// see the deadline; on a fake clock the context ends when the fake time
// reaches at, and its Err is then context.DeadlineExceeded as a real
// deadline's would be.
func (s *Scraper) withDeadline(ctx context.Context, at time.Time) (context.Context, context.CancelFunc) {
	if _, ok := s.clock.(clock.RealClock); ok {
		return context.WithDeadline(ctx, at)
	}
	inner, cancel := context.WithCancelCause(ctx)
	d := at.Sub(s.clock.Now())
	if d <= 0 {
		cancel(context.DeadlineExceeded)
		return clockCtx{inner}, func() {}
	}
	// A fake clock calls this with its own lock held: it must not call
	// the clock.
	t := s.clock.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return clockCtx{inner}, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// clockCtx is a context ended by a fake clock's timer: its Err reports the
// deadline like a real deadline's context, where the cancellation it is
// built on would say context.Canceled.
type clockCtx struct {
	context.Context
}

func (c clockCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}
