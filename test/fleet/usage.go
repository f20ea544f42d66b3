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

// counter is a container's (or a node's own) cumulative CPU counter whose
// rate can change: it integrates the rate over time, so the kubelet
// reports a counter that never goes back while the container lives. A
// restart (restart) starts it again from 0, as cAdvisor reads the new
// container's cgroup, while the pod's cgroup keeps counting (retired).
type counter struct {
	mu sync.Mutex
	// start is when the running container started.
	start    time.Time
	base     uint64 // nanoseconds of CPU accumulated up to since
	since    time.Time
	milliCPU int64
	memory   int64
	// swap and ephemeral are gauges, as memory: bytes.
	swap, ephemeral int64
	// retired is the CPU the containers before this one used, in
	// nanoseconds: the pod's cgroup, and so the pod's series, count it.
	retired uint64
	// earlier is the container the latest restart replaced, frozen at the
	// restart (nil: none): samples taken before start read it. Only one is
	// kept: no sample is older than one sampling interval.
	earlier *counter
}

func newCounter(start time.Time, u usage) *counter {
	return &counter{start: start, since: start, milliCPU: u.milliCPU, memory: u.memory, swap: u.swap, ephemeral: u.ephemeral}
}

// set changes the load from now on, or from the container's start when
// now is before it (the pod's first sync comes before its containers
// start): a container uses no CPU before it starts.
func (c *counter) set(now time.Time, u usage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.since) {
		c.base = c.at(now)
		c.since = now
	}
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
// in nanocores and the working set in bytes, of the container running at t.
func (c *counter) read(t time.Time) (cpu, nanoCores uint64, memory int64) {
	r := c.readAt(t)
	return r.cpu, r.nanoCores, r.memory
}

// reading is what a sample at one instant sees of a counter.
type reading struct {
	// start is when the container running at the instant started.
	start time.Time
	// cpu is its cumulative CPU and retired the CPU of the pod's
	// containers before it (unit: nanoseconds); nanoCores its rate.
	cpu, retired, nanoCores uint64
	// memory is its working set in bytes.
	memory int64
}

// readAt returns what a sample at t sees: the container that ran at t
// (the one a restart replaced when t is before the restart).
func (c *counter) readAt(t time.Time) reading {
	c.mu.Lock()
	if c.earlier != nil && t.Before(c.start) {
		earlier := c.earlier
		c.mu.Unlock()
		return earlier.readAt(t)
	}
	defer c.mu.Unlock()
	return reading{start: c.start, cpu: c.at(t), retired: c.retired, nanoCores: uint64(c.milliCPU) * 1_000_000, memory: c.memory}
}

// restart replaces the container at t, as the runtime does after it
// exits: the new container's cumulative CPU starts from 0 and its start
// time is t; its load (rate, working set, swap, ephemeral storage) goes on
// as the pod's usage says. The CPU the old one used moves to retired. t
// must lie after the running container's start, which restart returns.
func (c *counter) restart(t time.Time) (was time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.start) {
		return c.start, fmt.Errorf("restart at %v: not after the container's start %v", t, c.start)
	}
	was = c.start
	c.earlier = &counter{start: c.start, base: c.base, since: c.since, milliCPU: c.milliCPU, memory: c.memory,
		swap: c.swap, ephemeral: c.ephemeral, retired: c.retired}
	c.retired += c.at(t)
	c.start, c.since, c.base = t, t, 0
	return was, nil
}

func (c *counter) at(t time.Time) uint64 {
	if t.Before(c.since) {
		t = c.since
	}
	return c.base + uint64(c.milliCPU)*uint64(t.Sub(c.since).Nanoseconds())/1000
}
