package kubelet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// kubeletSummary is a node's summary in the kubelet's own types, as its
// stats handler writes it (indented JSON): with full, what
// /stats/summary answers (network, filesystems, volumes, ephemeral
// storage, process counts); without, what only_cpu_and_memory=true
// answers (cpu, memory and swap of node, pods and containers).
func kubeletSummary(pods, containers int, full bool) []byte {
	at := metav1.NewTime(requestTime.Add(-3 * time.Second))
	n := func(v uint64) *uint64 { return &v }
	cpu := func(total uint64) *statsapi.CPUStats {
		return &statsapi.CPUStats{Time: at, UsageNanoCores: n(25_000_000), UsageCoreNanoSeconds: n(total)}
	}
	mem := func(ws uint64) *statsapi.MemoryStats {
		return &statsapi.MemoryStats{Time: at, UsageBytes: n(ws + ws/8), WorkingSetBytes: n(ws), RSSBytes: n(ws * 3 / 4), PageFaults: n(3000), MajorPageFaults: n(0)}
	}
	swap := func() *statsapi.SwapStats { return &statsapi.SwapStats{Time: at, SwapUsageBytes: n(0)} }
	fs := func(used uint64) *statsapi.FsStats {
		return &statsapi.FsStats{Time: at, AvailableBytes: n(80 << 30), CapacityBytes: n(100 << 30), UsedBytes: n(used), InodesFree: n(6_000_000), Inodes: n(6_553_600), InodesUsed: n(used >> 16)}
	}
	network := func() *statsapi.NetworkStats {
		iface := statsapi.InterfaceStats{Name: "eth0", RxBytes: n(123456789), RxErrors: n(0), TxBytes: n(98765432), TxErrors: n(0)}
		return &statsapi.NetworkStats{Time: at, InterfaceStats: iface, Interfaces: []statsapi.InterfaceStats{iface}}
	}
	s := statsapi.Summary{Node: statsapi.NodeStats{
		NodeName:  "worker-1",
		StartTime: metav1.NewTime(requestTime.Add(-96 * time.Hour)),
		CPU:       cpu(123456789012345), Memory: mem(2684354560), Swap: swap(),
		SystemContainers: []statsapi.ContainerStats{
			{Name: "kubelet", StartTime: at, CPU: cpu(8123456789012), Memory: mem(70123520)},
			{Name: "runtime", StartTime: at, CPU: cpu(4123456789012), Memory: mem(50123520)},
			{Name: "pods", StartTime: at, CPU: cpu(98765432109876), Memory: mem(1900000000), Swap: swap()},
		},
	}}
	if full {
		s.Node.Network, s.Node.Fs = network(), fs(20<<30)
		s.Node.Runtime = &statsapi.RuntimeStats{ImageFs: fs(12 << 30), ContainerFs: fs(12 << 30)}
		s.Node.Rlimit = &statsapi.RlimitStats{Time: at, MaxPID: new(int64), NumOfRunningProcesses: new(int64)}
	}
	for p := range pods {
		ps := statsapi.PodStats{
			PodRef:    statsapi.PodReference{Name: fmt.Sprintf("app-%d-7d9f8c6b5-x2k4p", p), Namespace: fmt.Sprintf("team-%d", p%7), UID: fmt.Sprintf("0f4c6a2e-1b7d-4c1e-9a53-0d2f6b1e%04d", p)},
			StartTime: metav1.NewTime(requestTime.Add(-22 * time.Hour)),
			CPU:       cpu(3975308642000), Memory: mem(104857600), Swap: swap(),
		}
		for c := range containers {
			cs := statsapi.ContainerStats{
				Name: fmt.Sprintf("container-%d", c), StartTime: metav1.NewTime(requestTime.Add(-22 * time.Hour)),
				CPU: cpu(1987654321000 + uint64(p*1000+c)), Memory: mem(52428800 + uint64(p*4096)), Swap: swap(),
			}
			if full {
				cs.Rootfs, cs.Logs = fs(40960+uint64(c)), fs(8192)
			}
			ps.Containers = append(ps.Containers, cs)
		}
		if full {
			ps.Network = network()
			ps.VolumeStats = []statsapi.VolumeStats{
				{Name: "kube-api-access-x7k2q", FsStats: *fs(12288)},
				{Name: "cache", FsStats: *fs(1 << 20)},
			}
			ps.EphemeralStorage = fs(1<<20 + 2*(40960+8192))
			ps.ProcessStats = &statsapi.ProcessStats{ProcessCount: n(3)}
		}
		s.Pods = append(s.Pods, ps)
	}
	b, err := json.MarshalIndent(&s, "", " ")
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecodeSummaryCost is what --kubelet-ephemeral-storage costs a
// node's decode: the full summary (which carries the filesystem stats)
// against the only_cpu_and_memory one, both as the kubelet's types render
// them, at 30 pods of 2 containers.
func BenchmarkDecodeSummaryCost(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := map[bool]string{false: "only_cpu_and_memory", true: "full"}[full]
		b.Run(name, func(b *testing.B) {
			body := kubeletSummary(30, 2, full)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				batch, err := DecodeSummary(bytes.NewReader(body), "worker-1", requestTime)
				if err != nil || len(batch.Pods) != 30 {
					b.Fatalf("decode: %v", err)
				}
				recycle(batch)
			}
			b.ReportMetric(float64(len(body)), "body-B")
		})
	}
}

// TestKubeletSummaryDecodes: both bodies of the benchmark decode to the
// same cpu, memory and swap; the full one adds ephemeral storage, the
// container's rootfs plus logs and the node's fs.
func TestKubeletSummaryDecodes(t *testing.T) {
	cheap, err := DecodeSummary(bytes.NewReader(kubeletSummary(3, 2, false)), "n", requestTime)
	if err != nil {
		t.Fatal(err)
	}
	full, err := DecodeSummary(bytes.NewReader(kubeletSummary(3, 2, true)), "n", requestTime)
	if err != nil {
		t.Fatal(err)
	}
	c, f := cheap.Pods[2].Containers[1], full.Pods[2].Containers[1]
	if c.Has != points.HasCPU|points.HasMemory|points.HasSwap || f.Has != c.Has|points.HasEphemeralStorage {
		t.Fatalf("present values: only_cpu_and_memory %b, full %b", c.Has, f.Has)
	}
	if f.EphemeralStorage != 40961+8192 || full.NodePoint.EphemeralStorage != 20<<30 || cheap.NodePoint.Has&points.HasEphemeralStorage != 0 {
		t.Errorf("ephemeral storage: container %d, want %d; node %d, want %d", f.EphemeralStorage, 40961+8192, full.NodePoint.EphemeralStorage, 20<<30)
	}
	f.EphemeralStorage, f.Has = 0, c.Has
	if f != c {
		t.Errorf("the full summary's container differs beyond ephemeral storage: %+v vs %+v", f, c)
	}
}
