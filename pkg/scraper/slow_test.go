package scraper

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestEveryAnsweringNodeStoredEveryCycle: at the server's defaults (15s
// resolution, 10s timeout, 3.75s spread, 2s follow-up), every kubelet that
// answers within the timeout is stored in every cycle, from the start-up
// cycle on, whatever the mix of nodes answering in 6s, hanging (never
// answering) and answering at once, and however few the decode slots.
// (When a request held a slot while awaited, 6s answers sent nodes to a
// slow lane that started requests only in a cycle's first 5s: 24 of 60
// nodes were served at 16 slots, 96 of 240 at the default.)
func TestEveryAnsweringNodeStoredEveryCycle(t *testing.T) {
	tests := []struct {
		name                string
		slow, hanging, fast int
		// parallelism 0 is the default.
		parallelism int
	}{
		{name: "60 nodes in 6s, 16 slots", slow: 60, parallelism: 16},
		{name: "240 nodes in 6s, default slots", slow: 240},
		{name: "20 in 6s, 20 hanging, 20 at once, 16 slots", slow: 20, hanging: 20, fast: 20, parallelism: 16},
		{name: "200 in 6s, 4 hanging, 36 at once, default slots", slow: 200, hanging: 4, fast: 36},
		{name: "40 in 6s, 40 hanging, 4 at once, 4 slots", slow: 40, hanging: 40, fast: 4, parallelism: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clocktesting.NewFakeClock(epoch)
				client := newClockClient(clk, 6*time.Second, map[string]time.Time{})
				client.latencyOf = map[string]time.Duration{}
				var names, answering []string
				for i := range tt.slow + tt.hanging + tt.fast {
					n := fmt.Sprintf("node-%03d", i)
					names = append(names, n)
					switch {
					case i < tt.slow:
						answering = append(answering, n)
					case i < tt.slow+tt.hanging:
						client.hangFrom[n] = epoch
					default:
						client.latencyOf[n] = 40 * time.Millisecond
						answering = append(answering, n)
					}
				}
				sink := newCycleSink(clk)
				s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second, Parallelism: tt.parallelism,
					Spread: 3750 * time.Millisecond, FollowUp: 2 * time.Second}, nodes(names...), client, sink, nil, clk)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go s.Run(ctx)
				stepper{clk}.advance(150*time.Second, 100*time.Millisecond)

				sink.mu.Lock()
				defer sink.mu.Unlock()
				cycles := len(sink.ends)
				if cycles < 8 {
					t.Fatalf("%d cycles in 150s, want at least 8", cycles)
				}
				missing := map[int]int{}
				for _, n := range answering {
					in := map[int]bool{}
					for _, c := range sink.stored[n] {
						in[c] = true
					}
					for c := range cycles {
						if !in[c] {
							missing[c]++
						}
					}
				}
				for c := range cycles {
					if missing[c] > 0 {
						t.Errorf("cycle %d of %d: %d of %d answering nodes not stored", c, cycles, missing[c], len(answering))
					}
				}
			})
		})
	}
}
