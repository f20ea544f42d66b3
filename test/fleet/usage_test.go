package fleet

import (
	"testing"
	"time"
)

// TestCounterSet: a load changed at some instant integrates from then on;
// changed before the container starts (the pod's first sync runs before
// its containers start), the counter still reads 0 at the start, so a
// rate taken from the start time is the load.
func TestCounterSet(t *testing.T) {
	start := time.Date(2026, 12, 5, 10, 0, 0, 400_000_000, time.UTC)
	cases := []struct {
		name  string
		setAt time.Duration // from start
		read  time.Duration // from start
		want  uint64        // nanoseconds of CPU
	}{
		{name: "set before the start changes nothing before it", setAt: -time.Second, read: 0, want: 0},
		{name: "set before the start: the new load from the start", setAt: -time.Second, read: 2 * time.Second, want: 2 * 80_000_000},
		{name: "set after the start: the old load until then", setAt: time.Second, read: 2 * time.Second, want: 250_000_000 + 80_000_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounter(start, usage{milliCPU: 250, memory: 1 << 20})
			c.set(start.Add(tc.setAt), usage{milliCPU: 80, memory: 1 << 20})
			if got, _, _ := c.read(start.Add(tc.read)); got != tc.want {
				t.Errorf("cpu %d ns, want %d", got, tc.want)
			}
		})
	}
}
