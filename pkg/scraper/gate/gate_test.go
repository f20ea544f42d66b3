package gate

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAcquireBoundedByContext: at most Size slots are held at once, and a
// wait for a slot ends with the waiter's context.
func TestAcquireBoundedByContext(t *testing.T) {
	g := New(2)
	ctx := With(context.Background(), g)
	if From(ctx) != g {
		t.Fatal("From does not return the gate With put in")
	}
	if From(context.Background()) != nil {
		t.Fatal("From of a context without a gate is not nil")
	}
	for range 2 {
		if err := g.Acquire(ctx); err != nil {
			t.Fatalf("acquiring a free slot: %v", err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := g.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third acquire of two slots returned %v, want the deadline", err)
	}
	g.Release()
	if err := g.Acquire(ctx); err != nil {
		t.Fatalf("acquiring a released slot: %v", err)
	}
}

func TestAcquireAllocatesNothing(t *testing.T) {
	g := New(1)
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		_ = g.Acquire(ctx)
		g.Release()
	}); n != 0 {
		t.Errorf("Acquire and Release allocate %v times, want 0", n)
	}
}
