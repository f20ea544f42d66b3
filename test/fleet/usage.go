package fleet

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// UsageAnnotation sets a pod's per-container usage:
// "cpu=250m,memory=64Mi,swap=16Mi,ephemeral-storage=100Mi". Swap is what
// the container has swapped out, on a node with swap (NodeShape.Swap;
// elsewhere it is 0); ephemeral storage is its writable layer plus its
// logs (a quarter of it), reported in the full summary only.
const UsageAnnotation = "fleet.kubemetrics.io/usage"

// Default usage of a container without the annotation.
const (
	defaultMilliCPU = 10
	defaultMemory   = 32 << 20
	// A few files written and a little log: 48 KiB.
	defaultEphemeral = 48 << 10
)

// usage is a steady load: CPU in millicores, memory, swap and ephemeral
// storage in bytes.
type usage struct {
	milliCPU  int64
	memory    int64
	swap      int64
	ephemeral int64
}

// ParseUsage returns the per-container load an annotation value asks for
// (the defaults for an empty one): millicores and bytes.
func ParseUsage(s string) (milliCPU, memory int64, err error) {
	u, err := parseUsage(s)
	return u.milliCPU, u.memory, err
}

func parseUsage(s string) (usage, error) {
	u := usage{milliCPU: defaultMilliCPU, memory: defaultMemory, ephemeral: defaultEphemeral}
	if strings.TrimSpace(s) == "" {
		return u, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return u, fmt.Errorf("%q: want key=quantity", kv)
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return u, fmt.Errorf("%q: %w", kv, err)
		}
		switch k {
		case "cpu":
			u.milliCPU = q.MilliValue()
		case "memory":
			u.memory = q.Value()
		case "swap":
			u.swap = max(q.Value(), 0)
		case "ephemeral-storage":
			u.ephemeral = max(q.Value(), 0)
		default:
			return u, fmt.Errorf("%q: unknown resource %s", kv, k)
		}
	}
	return u, nil
}

// counter is a cumulative CPU counter whose rate can change: it integrates
// the rate over time, so the kubelet reports a counter that never goes back.
type counter struct {
	mu       sync.Mutex
	start    time.Time
	base     uint64 // nanoseconds of CPU accumulated up to since
	since    time.Time
	milliCPU int64
	memory   int64
	// swap and ephemeral are gauges, as memory: bytes.
	swap, ephemeral int64
}

func newCounter(start time.Time, u usage) *counter {
	return &counter{start: start, since: start, milliCPU: u.milliCPU, memory: u.memory, swap: u.swap, ephemeral: u.ephemeral}
}

// set changes the load from now on.
func (c *counter) set(now time.Time, u usage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.at(now)
	c.since = now
	c.milliCPU, c.memory = u.milliCPU, u.memory
	c.swap, c.ephemeral = u.swap, u.ephemeral
}

// gauges returns the swapped-out and ephemeral-storage bytes.
func (c *counter) gauges() (swap, ephemeral int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.swap, c.ephemeral
}

// read returns the cumulative CPU at t in nanoseconds, the current rate
// in nanocores and the working set in bytes.
func (c *counter) read(t time.Time) (cpu, nanoCores uint64, memory int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at(t), uint64(c.milliCPU) * 1_000_000, c.memory
}

func (c *counter) at(t time.Time) uint64 {
	if t.Before(c.since) {
		t = c.since
	}
	return c.base + uint64(c.milliCPU)*uint64(t.Sub(c.since).Nanoseconds())/1000
}
