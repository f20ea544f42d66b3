package fleet

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/kubernetes/pkg/kubelet/server/stats"
)

// The kubelet reports what cAdvisor sampled at its last housekeeping, not
// what holds at the request: every stat carries that sample's time, at
// nanosecond precision. /metrics/resource prints it in milliseconds and
// /stats/summary in whole seconds (metav1.Time), so the two formats of one
// sample differ, as a real kubelet's do.
//
// Each simulated node samples on its own grid: a sub-second phase plus
// whole multiples of Config.SampleInterval. With a whole-second interval
// every sample of a node has the same fraction of a second, so a rate
// taken between two summary samples (whose times lose that fraction) is
// still exact; a real kubelet's housekeeping jitters and is not.

// defaultSampleInterval is how often a simulated node samples unless
// Config.SampleInterval says otherwise. Real kubelets sample every 10-15 s;
// one second keeps tests that scrape every few seconds seeing new points.
const defaultSampleInterval = time.Second

// samplePhase is node i's sub-second offset on its sampling grid: spread
// over the second with microsecond digits, as real sample times have.
func samplePhase(i int) time.Duration {
	return time.Duration((i*7919+131)%1000)*time.Millisecond + time.Duration((i*104729+17)%1000)*time.Microsecond
}

// sampleTime is the latest instant of the node's sampling grid at or
// before now.
func (n *node) sampleTime(now time.Time) time.Time {
	return now.Add(-n.phase).Truncate(n.every).Add(n.phase)
}

// errNoFsStats answers the full summary: the simulator has only CPU and
// memory, as the only_cpu_and_memory=true summary asks.
var errNoFsStats = errors.New("failed to get imageFs stats: this simulated kubelet has no filesystem stats; ask with only_cpu_and_memory=true")

// nodeKey carries the node a stats request is for through the kubelet's
// stats handler, which passes the request's context to the provider.
type nodeKey struct{}

// summaryProvider is the fleet's stats.SummaryProvider: the kubelet's own
// /stats/summary handler and /metrics/resource collector render what it
// returns. A request's node comes from its context (nodeKey) or, for a
// node's resource collector, from node.
type summaryProvider struct {
	node *node
}

var _ stats.SummaryProvider = summaryProvider{}

// GetCPUAndMemoryStats returns the node's latest sample.
func (p summaryProvider) GetCPUAndMemoryStats(ctx context.Context) (*statsapi.Summary, error) {
	n := p.node
	if v, ok := ctx.Value(nodeKey{}).(*node); ok {
		n = v
	}
	if n == nil {
		return nil, errors.New("no simulated node in the request")
	}
	return n.sample(n.clock.Now()), nil
}

// Get fails as a kubelet whose runtime cannot report its image filesystem
// does: the full summary needs filesystem stats the simulator lacks.
func (p summaryProvider) Get(context.Context, bool) (*statsapi.Summary, error) {
	return nil, errNoFsStats
}

// sample returns the node's stats at its latest sampling instant, built
// once per instant and shared by both endpoints. Callers must not modify
// it.
func (n *node) sample(now time.Time) *statsapi.Summary {
	at := n.sampleTime(now)
	n.mu.Lock()
	if n.cached != nil && n.cachedAt.Equal(at) {
		s := n.cached
		n.mu.Unlock()
		return s
	}
	skew := n.skew
	n.mu.Unlock()
	s := n.buildSummary(at, skew)
	n.mu.Lock()
	if n.cachedAt.Before(at) || n.cached == nil {
		n.cached, n.cachedAt = s, at
	}
	n.mu.Unlock()
	return s
}

// statBlock holds one container's (or pod's, or node's) stats and the
// values they point to, so a summary is a few allocations, not hundreds.
type statBlock struct {
	cpu  statsapi.CPUStats
	mem  statsapi.MemoryStats
	swap statsapi.SwapStats
	// nanoCores, cpuTotal, available, usage, workingSet, rss, faults,
	// majorFaults, swapUsage
	v [9]uint64
}

// fill sets the block's stats at time t: CPU (cumulative nanoseconds and
// the current rate in nanocores) and the working set in bytes; the other
// memory figures are derived as cAdvisor's relate (usage includes inactive
// page cache, RSS is part of the working set). available < 0 means no
// limit, as for containers without one.
func (b *statBlock) fill(t metav1.Time, cpu, nanoCores uint64, workingSet, available int64) {
	ws := uint64(max(workingSet, 0))
	b.v = [9]uint64{nanoCores, cpu, uint64(max(available, 0)), ws + ws/8, ws, ws * 3 / 4, ws >> 12, ws >> 22, 0}
	b.cpu = statsapi.CPUStats{Time: t, UsageNanoCores: &b.v[0], UsageCoreNanoSeconds: &b.v[1]}
	b.mem = statsapi.MemoryStats{Time: t, UsageBytes: &b.v[3], WorkingSetBytes: &b.v[4], RSSBytes: &b.v[5], PageFaults: &b.v[6], MajorPageFaults: &b.v[7]}
	if available >= 0 {
		b.mem.AvailableBytes = &b.v[2]
	}
	b.swap = statsapi.SwapStats{Time: t, SwapUsageBytes: &b.v[8]}
}

// buildSummary is the only_cpu_and_memory summary a kubelet would return
// for the sample taken at at, its clock skew ahead: node, system
// containers and pods, each pod with its containers and their sum.
func (n *node) buildSummary(at time.Time, skew time.Duration) *statsapi.Summary {
	// Pods started after the sample are not in it yet.
	pods := n.snapshot()
	containers := 0
	for i := 0; i < len(pods); {
		if pods[i].start.After(at) {
			pods[i] = pods[len(pods)-1]
			pods = pods[:len(pods)-1]
			continue
		}
		containers += len(pods[i].containers)
		i++
	}
	blocks := make([]statBlock, containers+len(pods)+2)
	next := func() *statBlock { b := &blocks[0]; blocks = blocks[1:]; return b }
	t := metav1.NewTime(at.Add(skew))
	s := &statsapi.Summary{Pods: make([]statsapi.PodStats, 0, len(pods))}
	cstats := make([]statsapi.ContainerStats, 0, containers)
	var podsCPU, podsRate uint64
	var podsMem int64
	for _, p := range pods {
		var cpu, rate uint64
		var mem int64
		first := len(cstats)
		for _, c := range p.containers {
			ccpu, crate, cmem := c.cpu.read(at)
			cpu, rate, mem = cpu+ccpu, rate+crate, mem+cmem
			b := next()
			b.fill(t, ccpu, crate, cmem, -1)
			cstats = append(cstats, statsapi.ContainerStats{Name: c.name, StartTime: metav1.NewTime(c.start.Add(skew)), CPU: &b.cpu, Memory: &b.mem, Swap: &b.swap})
		}
		b := next()
		b.fill(t, cpu, rate, mem, -1)
		s.Pods = append(s.Pods, statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: p.name, Namespace: p.namespace, UID: p.uid},
			StartTime:  metav1.NewTime(p.start.Add(skew)),
			Containers: cstats[first:len(cstats):len(cstats)],
			CPU:        &b.cpu, Memory: &b.mem, Swap: &b.swap,
		})
		podsCPU, podsRate, podsMem = podsCPU+cpu, podsRate+rate, podsMem+mem
	}
	sysCPU, sysRate, sysMem := n.self.read(at)
	nodeCPU, nodeRate, nodeMem, nodeT := sysCPU+podsCPU, sysRate+podsRate, sysMem+podsMem, t
	if n.host != nil {
		if cpu, mem, sampled, err := n.host.Read(); err == nil {
			nodeCPU, nodeMem, nodeT = cpu, int64(mem), metav1.NewTime(sampled.Add(skew))
		}
	}
	nb := next()
	nb.fill(nodeT, nodeCPU, nodeRate, nodeMem, n.shape.Memory-nodeMem)
	pb := next()
	pb.fill(t, podsCPU, podsRate, podsMem, -1)
	s.Node = statsapi.NodeStats{
		NodeName:  n.name,
		StartTime: metav1.NewTime(n.start.Add(skew)),
		CPU:       &nb.cpu, Memory: &nb.mem, Swap: &nb.swap,
		SystemContainers: []statsapi.ContainerStats{
			{Name: statsapi.SystemContainerPods, StartTime: metav1.NewTime(n.start.Add(skew)), CPU: &pb.cpu, Memory: &pb.mem, Swap: &pb.swap},
		},
	}
	return s
}
