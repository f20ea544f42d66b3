package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// swapFleet is three small nodes: n-00000 with 8 GiB of swap, 192 MiB
// of it swapped out by the system; n-00001 without swap (its kubelet
// reports 0 swapped everywhere, as cAdvisor reads it); n-00002 whose
// kubelet reports no swap stats at all. Each runs two pods of two
// containers; on each, container c0 asks for 256 MiB swapped out and
// 10 MiB of ephemeral storage, c1 for neither (48 KiB of the latter).
func swapFleet(t *testing.T) *Fleet {
	t.Helper()
	shape := func(i int) NodeShape {
		s := smallNode
		switch i {
		case 0:
			s.Swap, s.SystemSwap = 8<<30, 192<<20
		case 2:
			s.NoSwapStats = true
		}
		return s
	}
	f, err := New(Config{Nodes: 3, Prefix: "n", Shape: shape, Clock: testclock.NewFakePassiveClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range f.nodes {
		podStart := n.start.Add(10 * time.Minute)
		for p := range 2 {
			pp := &pod{namespace: "ns", name: fmt.Sprintf("p%d", p), uid: fmt.Sprintf("uid-%d", p), node: n.name, start: podStart}
			for j := range 2 {
				u := usage{milliCPU: 100, memory: 64 << 20, ephemeral: defaultEphemeral}
				if j == 0 {
					u.swap, u.ephemeral = 256<<20, 10<<20
				}
				cs := containerStart(podStart, "uid", j)
				pp.containers = append(pp.containers, container{name: fmt.Sprintf("c%d", j), cpu: newCounter(cs, u)})
			}
			n.pods["ns/"+pp.name] = pp
		}
	}
	return f
}

// TestSwapAndFilesystemsAsTheKubeletWritesThem: the fleet's swap and
// filesystem stats, written by the kubelet's own handler and collector,
// read the same through the kubelet's types (encoding/json, Prometheus'
// parser) and through our decoders; swap is what each node's setup says
// (absent, not zero, where its kubelet reports none), and ephemeral
// storage is in the full summary only.
func TestSwapAndFilesystemsAsTheKubeletWritesThem(t *testing.T) {
	f := swapFleet(t)
	const c0Swap, c0Eph, c1Eph = 256 << 20, 10 << 20, defaultEphemeral
	for _, tt := range []struct {
		i        int
		swap     bool   // swap reported
		c0, node uint64 // swap of c0 and of the node
	}{
		{0, true, c0Swap, 192<<20 + 2*c0Swap},
		{1, true, 0, 0},
		{2, false, 0, 0},
	} {
		n := f.nodes[tt.i]
		t.Run(n.name, func(t *testing.T) {
			decode := func(path string) *points.Batch {
				t.Helper()
				body := get(t, f, n, path)
				var b *points.Batch
				var err error
				if path == "/metrics/resource" {
					b, err = kubelet.DecodeResource(bytes.NewReader(body), n.name, time.Now())
				} else {
					b, err = kubelet.DecodeSummary(bytes.NewReader(body), n.name, time.Now())
				}
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				return b
			}
			// The kubelet's types, as a reference.
			var cheap, full statsapi.Summary
			if err := json.Unmarshal(get(t, f, n, "/stats/summary?only_cpu_and_memory=true"), &cheap); err != nil {
				t.Fatal(err)
			}
			fullBody := get(t, f, n, "/stats/summary")
			if err := json.Unmarshal(fullBody, &full); err != nil {
				t.Fatal(err)
			}
			if (cheap.Node.Swap != nil) != tt.swap || (full.Node.Swap != nil) != tt.swap {
				t.Fatalf("node swap stats present %v/%v, want %v", cheap.Node.Swap != nil, full.Node.Swap != nil, tt.swap)
			}
			if cheap.Node.Fs != nil || cheap.Pods[0].Containers[0].Rootfs != nil || full.Node.Fs == nil || full.Pods[0].EphemeralStorage == nil {
				t.Fatal("filesystem stats in the only_cpu_and_memory summary, or not in the full one")
			}
			// The kubelet's sum for a pod: containers' rootfs and logs, and
			// its volumes.
			var podEph uint64
			for _, c := range full.Pods[0].Containers {
				podEph += *c.Rootfs.UsedBytes + *c.Logs.UsedBytes
			}
			for _, v := range full.Pods[0].VolumeStats {
				podEph += *v.UsedBytes
			}
			if got := *full.Pods[0].EphemeralStorage.UsedBytes; got != podEph {
				t.Errorf("pod ephemeral-storage usedBytes %d, want its containers' and volumes' %d", got, podEph)
			}
			parser := expfmt.NewTextParser(model.LegacyValidation)
			mfs, err := parser.TextToMetricFamilies(bytes.NewReader(get(t, f, n, "/metrics/resource")))
			if err != nil {
				t.Fatal(err)
			}
			if got := mfs["node_swap_usage_bytes"] != nil; got != tt.swap {
				t.Errorf("node_swap_usage_bytes written: %v, want %v", got, tt.swap)
			}
			if got := mfs["container_swap_usage_bytes"] != nil && len(mfs["container_swap_usage_bytes"].Metric) == 4; got != tt.swap {
				t.Errorf("container_swap_usage_bytes for the 4 containers: %v, want %v", got, tt.swap)
			}

			type extras struct {
				Swap, Eph       uint64
				HasSwap, HasEph bool
			}
			of := func(p points.Point) extras {
				return extras{p.Swap, p.EphemeralStorage, p.Has&points.HasSwap != 0, p.Has&points.HasEphemeralStorage != 0}
			}
			nodeFs := *full.Node.Fs.UsedBytes
			for _, ep := range []struct {
				path string
				eph  bool
			}{{"/metrics/resource", false}, {"/stats/summary?only_cpu_and_memory=true", false}, {"/stats/summary", true}} {
				b := decode(ep.path)
				got := []extras{of(b.NodePoint)}
				want := []extras{{Swap: tt.node, HasSwap: tt.swap}}
				if ep.eph {
					want[0].Eph, want[0].HasEph = nodeFs, true
				}
				for _, p := range b.Pods {
					for _, c := range p.Containers {
						got = append(got, of(c.Point))
						w := extras{HasSwap: tt.swap, HasEph: ep.eph}
						if c.Name == "c0" {
							w.Swap = tt.c0
							if ep.eph {
								w.Eph = c0Eph
							}
						} else if ep.eph {
							w.Eph = c1Eph
						}
						want = append(want, w)
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: node and containers' swap and ephemeral storage (-want +got):\n%s", ep.path, diff)
				}
				// And what the kubelet's types say, for the full summary.
				if ep.eph && nodeFs != b.NodePoint.EphemeralStorage {
					t.Errorf("node fs usedBytes %d, decoded %d", nodeFs, b.NodePoint.EphemeralStorage)
				}
			}
		})
	}
}

// TestParseUsageSwapAndEphemeralStorage: the usage annotation's swap and
// ephemeral-storage keys, their defaults (0 and 48 KiB) and bad values.
func TestParseUsageSwapAndEphemeralStorage(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    usage
		wantErr bool
	}{
		{"", usage{milliCPU: defaultMilliCPU, memory: defaultMemory, ephemeral: defaultEphemeral}, false},
		{"cpu=1,swap=64Mi", usage{milliCPU: 1000, memory: defaultMemory, swap: 64 << 20, ephemeral: defaultEphemeral}, false},
		{"ephemeral-storage=1Gi, memory=1Gi", usage{milliCPU: defaultMilliCPU, memory: 1 << 30, ephemeral: 1 << 30}, false},
		{"swap=-5", usage{milliCPU: defaultMilliCPU, memory: defaultMemory, ephemeral: defaultEphemeral}, false},
		{"swap=lots", usage{}, true},
	} {
		got, err := parseUsage(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want one: %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
