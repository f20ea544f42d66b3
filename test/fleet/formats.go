package fleet

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// summary renders /stats/summary?only_cpu_and_memory=true. Its timestamps
// travel at whole seconds, so every counter is read at that second.
func (n *node) summary(now time.Time) []byte {
	at := now.Truncate(time.Second)
	ts := at.UTC().Format(time.RFC3339)
	pods := n.snapshot()
	var b strings.Builder
	var nodeCPU uint64
	var nodeMem int64
	cpu, mem := n.self.read(at)
	nodeCPU, nodeMem = cpu, mem
	for i, p := range pods {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"podRef":{"name":%q,"namespace":%q,"uid":%q},"startTime":%q,"containers":[`, p.name, p.namespace, p.uid, p.start.UTC().Format(time.RFC3339))
		for j, c := range p.containers {
			cpu, mem := c.cpu.read(at)
			nodeCPU += cpu
			nodeMem += mem
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":%q,"startTime":%q,"cpu":{"time":%q,"usageCoreNanoSeconds":%d},"memory":{"time":%q,"usageBytes":%d,"workingSetBytes":%d,"rssBytes":%d,"pageFaults":0,"majorPageFaults":0}}`,
				c.name, p.start.UTC().Format(time.RFC3339), ts, cpu, ts, mem+4096, mem, mem/2)
		}
		b.WriteString("]}")
	}
	nodeCPU, nodeMem, nodeAt := n.nodeSample(nodeCPU, nodeMem, at)
	nts := nodeAt.UTC().Format(time.RFC3339)
	// b holds the pods; the node's sums are known only after them.
	return fmt.Appendf(nil, `{"node":{"nodeName":%q,"startTime":%q,"cpu":{"time":%q,"usageCoreNanoSeconds":%d},"memory":{"time":%q,"availableBytes":%d,"usageBytes":%d,"workingSetBytes":%d}},"pods":[%s]}`,
		n.name, n.start.UTC().Format(time.RFC3339), nts, nodeCPU, nts, max(int64(32<<30)-nodeMem, 0), nodeMem+8192, nodeMem, b.String())
}

// resource renders /metrics/resource with millisecond timestamps.
func (n *node) resource(now time.Time) []byte {
	at := now.Truncate(time.Millisecond)
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	pods := n.snapshot()
	var cpuLines, memLines, startLines strings.Builder
	nodeCPU, nodeMem := n.self.read(at)
	for _, p := range pods {
		for _, c := range p.containers {
			cpu, mem := c.cpu.read(at)
			nodeCPU += cpu
			nodeMem += mem
			labels := fmt.Sprintf(`{container=%q,namespace=%q,pod=%q}`, c.name, p.namespace, p.name)
			fmt.Fprintf(&cpuLines, "container_cpu_usage_seconds_total%s %s %s\n", labels, strconv.FormatFloat(float64(cpu)/1e9, 'g', -1, 64), ms)
			fmt.Fprintf(&memLines, "container_memory_working_set_bytes%s %s %s\n", labels, strconv.FormatFloat(float64(mem), 'g', -1, 64), ms)
			fmt.Fprintf(&startLines, "container_start_time_seconds%s %s\n", labels, strconv.FormatFloat(float64(p.start.UnixNano())/1e9, 'e', 9, 64))
		}
	}
	nodeCPU, nodeMem, nodeAt := n.nodeSample(nodeCPU, nodeMem, at)
	nodeMS := strconv.FormatInt(nodeAt.UnixMilli(), 10)
	var b strings.Builder
	b.WriteString("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n")
	b.WriteString(cpuLines.String())
	b.WriteString("# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n")
	b.WriteString(memLines.String())
	b.WriteString("# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n")
	b.WriteString(startLines.String())
	fmt.Fprintf(&b, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %s %s\n", strconv.FormatFloat(float64(nodeCPU)/1e9, 'g', -1, 64), nodeMS)
	fmt.Fprintf(&b, "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes %s %s\n", strconv.FormatFloat(float64(nodeMem), 'g', -1, 64), nodeMS)
	b.WriteString("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n")
	return []byte(b.String())
}

// nodeSample is the node-level sample: the simulated sum, or, for the host
// node, this machine's real usage as cAdvisor last sampled it.
func (n *node) nodeSample(simCPU uint64, simMem int64, at time.Time) (uint64, int64, time.Time) {
	if n.host == nil {
		return simCPU, simMem, at
	}
	cpu, mem, sampled, err := n.host.Read()
	if err != nil {
		return simCPU, simMem, at
	}
	return cpu, int64(mem), sampled
}
