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
	return n.sample(n.clock.Now(), false), nil
}

// Get returns the node's latest full summary: the only_cpu_and_memory
// one plus the filesystem stats the kubelet adds (node fs and runtime
// image filesystem; each container's rootfs and logs; each pod's volume
// and ephemeral-storage stats), as the kubelet's stats handler asks its
// provider when the request lacks only_cpu_and_memory=true.
func (p summaryProvider) Get(ctx context.Context, _ bool) (*statsapi.Summary, error) {
	n := p.node
	if v, ok := ctx.Value(nodeKey{}).(*node); ok {
		n = v
	}
	if n == nil {
		return nil, errors.New("no simulated node in the request")
	}
	return n.sample(n.clock.Now(), true), nil
}

// sample returns the node's stats at its latest sampling instant, built
// once per instant and kind (full or only CPU and memory) and shared by
// both endpoints. Callers must not modify it.
func (n *node) sample(now time.Time, full bool) *statsapi.Summary {
	at := n.sampleTime(now)
	n.mu.Lock()
	c := &n.cached[0]
	if full {
		c = &n.cached[1]
	}
	if c.s != nil && c.at.Equal(at) {
		s := c.s
		n.mu.Unlock()
		return s
	}
	skew := n.skew
	n.mu.Unlock()
	s := n.buildSummary(at, skew, full)
	n.mu.Lock()
	if c.at.Before(at) || c.s == nil {
		c.s, c.at = s, at
	}
	n.mu.Unlock()
	return s
}

// cachedSummary is a node's latest summary of one kind and its instant.
type cachedSummary struct {
	s  *statsapi.Summary
	at time.Time
}

// statBlock holds one container's (or pod's, or node's) stats and the
// values they point to, so a summary is a few allocations, not hundreds.
type statBlock struct {
	cpu  statsapi.CPUStats
	mem  statsapi.MemoryStats
	swap statsapi.SwapStats
	// nanoCores, cpuTotal, available, usage, workingSet, rss, faults,
	// majorFaults, swapUsage, swapAvailable
	v [10]uint64
}

// fill sets the block's stats at time t: CPU (cumulative nanoseconds and
// the current rate in nanocores), the working set and the swap in use in
// bytes; the other memory figures are derived as cAdvisor's relate (usage
// includes inactive page cache, RSS is part of the working set).
// available < 0 means no memory limit, swapAvailable < 0 no swap limit,
// as for containers without one.
func (b *statBlock) fill(t metav1.Time, cpu, nanoCores uint64, workingSet, available, swap, swapAvailable int64) {
	ws := uint64(max(workingSet, 0))
	b.v = [10]uint64{nanoCores, cpu, uint64(max(available, 0)), ws + ws/8, ws, ws * 3 / 4, ws >> 12, ws >> 22, uint64(max(swap, 0)), uint64(max(swapAvailable, 0))}
	b.cpu = statsapi.CPUStats{Time: t, UsageNanoCores: &b.v[0], UsageCoreNanoSeconds: &b.v[1]}
	b.mem = statsapi.MemoryStats{Time: t, UsageBytes: &b.v[3], WorkingSetBytes: &b.v[4], RSSBytes: &b.v[5], PageFaults: &b.v[6], MajorPageFaults: &b.v[7]}
	if available >= 0 {
		b.mem.AvailableBytes = &b.v[2]
	}
	b.swap = statsapi.SwapStats{Time: t, SwapUsageBytes: &b.v[8]}
	if swapAvailable >= 0 {
		b.swap.SwapAvailableBytes = &b.v[9]
	}
}

// swapStats is the block's swap stats, or nil on a node whose kubelet
// reports none.
func (n *node) swapStats(b *statBlock) *statsapi.SwapStats {
	if n.shape.NoSwapStats {
		return nil
	}
	return &b.swap
}

// fsBlock holds one filesystem's stats and their values.
type fsBlock struct {
	fs statsapi.FsStats
	// available, capacity, used, inodesFree, inodes, inodesUsed
	v [6]uint64
}

// fill sets a filesystem of capacity bytes with used bytes in use, at
// time t; inodes as a filesystem of 16 KiB per inode has them.
func (b *fsBlock) fill(t metav1.Time, capacity, used int64) *statsapi.FsStats {
	c, u := uint64(max(capacity, 0)), uint64(max(used, 0))
	u = min(u, c)
	inodes, inodesUsed := c>>14, u>>14+1
	b.v = [6]uint64{c - u, c, u, inodes - min(inodesUsed, inodes), inodes, inodesUsed}
	b.fs = statsapi.FsStats{Time: t, AvailableBytes: &b.v[0], CapacityBytes: &b.v[1], UsedBytes: &b.v[2], InodesFree: &b.v[3], Inodes: &b.v[4], InodesUsed: &b.v[5]}
	return &b.fs
}

// usedOnly is a filesystem stat of usedBytes (and inodes) alone, as the
// kubelet reports a container's logs and a pod's volumes on the node's
// filesystem: it fills fill's stat, then drops capacity and available.
func usedOnly(fs *statsapi.FsStats) *statsapi.FsStats {
	fs.AvailableBytes, fs.CapacityBytes, fs.InodesFree, fs.Inodes = nil, nil, nil, nil
	return fs
}

// buildSummary is the summary a kubelet would return for the sample taken
// at at, its clock skew ahead: node, system containers and pods, each pod
// with its containers and their sum; with full, also the filesystem
// stats only the full summary has.
func (n *node) buildSummary(at time.Time, skew time.Duration, full bool) *statsapi.Summary {
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
	var fsBlocks []fsBlock
	if full {
		// Each container's rootfs and logs, each pod's volume and
		// ephemeral storage, the node's fs and image filesystem.
		fsBlocks = make([]fsBlock, 2*containers+2*len(pods)+2)
	}
	nextFs := func() *fsBlock { b := &fsBlocks[0]; fsBlocks = fsBlocks[1:]; return b }
	diskCap, diskSystem := n.shape.disk()
	t := metav1.NewTime(at.Add(skew))
	s := &statsapi.Summary{Pods: make([]statsapi.PodStats, 0, len(pods))}
	cstats := make([]statsapi.ContainerStats, 0, containers)
	var podsCPU, podsRate uint64
	var podsMem, podsSwap, podsDisk int64
	for _, p := range pods {
		var cpu, rate uint64
		var mem, swap, disk int64
		first := len(cstats)
		for _, c := range p.containers {
			r := c.cpu.readAt(at)
			cswap, ceph := c.cpu.gauges()
			if n.shape.Swap <= 0 {
				cswap = 0 // nothing to swap to
			}
			// The pod's cgroup outlives its containers: its CPU keeps
			// what the restarted ones used.
			cpu, rate, mem, swap = cpu+r.retired+r.cpu, rate+r.nanoCores, mem+r.memory, swap+cswap
			b := next()
			b.fill(t, r.cpu, r.nanoCores, r.memory, -1, cswap, -1)
			cs := statsapi.ContainerStats{Name: c.name, StartTime: metav1.NewTime(r.start.Add(skew)), CPU: &b.cpu, Memory: &b.mem, Swap: n.swapStats(b)}
			if full {
				logs := ceph / 4
				cs.Rootfs = nextFs().fill(t, diskCap, ceph-logs)
				cs.Logs = usedOnly(nextFs().fill(t, diskCap, logs))
				disk += ceph
			}
			cstats = append(cstats, cs)
		}
		b := next()
		b.fill(t, cpu, rate, mem, -1, swap, -1)
		ps := statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: p.name, Namespace: p.namespace, UID: p.uid},
			StartTime:  metav1.NewTime(p.start.Add(skew)),
			Containers: cstats[first:len(cstats):len(cstats)],
			CPU:        &b.cpu, Memory: &b.mem, Swap: n.swapStats(b),
		}
		if full {
			// The service account token's projected volume, on the node's
			// filesystem; the pod's ephemeral storage is its containers'
			// plus its volumes', as the kubelet sums it.
			const token = 12 << 10
			ps.VolumeStats = []statsapi.VolumeStats{{Name: "kube-api-access", FsStats: *usedOnly(nextFs().fill(t, diskCap, token))}}
			disk += token
			ps.EphemeralStorage = nextFs().fill(t, diskCap, disk)
		}
		s.Pods = append(s.Pods, ps)
		podsCPU, podsRate, podsMem, podsSwap, podsDisk = podsCPU+cpu, podsRate+rate, podsMem+mem, podsSwap+swap, podsDisk+disk
	}
	sysCPU, sysRate, sysMem := n.self.read(at)
	nodeCPU, nodeRate, nodeMem, nodeT := sysCPU+podsCPU, sysRate+podsRate, sysMem+podsMem, t
	if n.host != nil {
		if cpu, mem, sampled, err := n.host.Read(); err == nil {
			nodeCPU, nodeMem, nodeT = cpu, int64(mem), metav1.NewTime(sampled.Add(skew))
		}
	}
	nodeSwap, nodeSwapAvailable := int64(0), int64(-1)
	if n.shape.Swap > 0 {
		nodeSwap = min(n.shape.SystemSwap+podsSwap, n.shape.Swap)
		nodeSwapAvailable = n.shape.Swap - nodeSwap
	}
	nb := next()
	nb.fill(nodeT, nodeCPU, nodeRate, nodeMem, n.shape.Memory-nodeMem, nodeSwap, nodeSwapAvailable)
	pb := next()
	pb.fill(t, podsCPU, podsRate, podsMem, -1, podsSwap, -1)
	s.Node = statsapi.NodeStats{
		NodeName:  n.name,
		StartTime: metav1.NewTime(n.start.Add(skew)),
		CPU:       &nb.cpu, Memory: &nb.mem, Swap: n.swapStats(nb),
		SystemContainers: []statsapi.ContainerStats{
			{Name: statsapi.SystemContainerPods, StartTime: metav1.NewTime(n.start.Add(skew)), CPU: &pb.cpu, Memory: &pb.mem, Swap: n.swapStats(pb)},
		},
	}
	if full {
		s.Node.Fs = nextFs().fill(t, diskCap, diskSystem+podsDisk)
		images := nextFs().fill(t, diskCap, diskSystem/2)
		s.Node.Runtime = &statsapi.RuntimeStats{ImageFs: images, ContainerFs: images}
	}
	return s
}
