package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

var listKeys = []string{
	"pods/apiserver/protobuf", "pods/apiserver/json", "pods/direct/protobuf", "pods/direct/json",
	"nodes/apiserver/protobuf", "nodes/apiserver/json", "nodes/direct/protobuf", "nodes/direct/json",
}

// markdown renders one fleet size's results.
func markdown(rs []Result) string {
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	r0 := rs[0]
	fmt.Fprintf(&b, "%d nodes x %d pods x %d containers, --metric-resolution=%gs\n\n", r0.Nodes, r0.Pods, r0.Containers, r0.ResolutionSeconds)
	b.WriteString("| binary | CPU s/min | millicores/node | RSS steady MiB | RSS peak MiB | KiB/node | first full list s (direct / apiserver) | cycle p50 s | cycle max s | spread p50 s | kubelet requests/node/cycle (min-max per node) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.2f | %.4f | %.0f | %.0f | %.1f | %.1f / %.1f | %.2f | %.2f | %.2f | %.2f (%d-%d over %d cycles) |\n",
			r.Name, r.CPUSecondsPerMinute, r.MilliCoresPerNode, r.RSSSteadyMiB, r.RSSPeakMiB, r.KiBPerNode, r.FirstFullListDirectSeconds, r.FirstFullListSeconds,
			r.CycleP50, r.CycleMax, r.SpreadP50, r.KubeletRequestsPerNodePerCycle, r.KubeletRequestsMinMaxPerNode[0], r.KubeletRequestsMinMaxPerNode[1], r.Cycles)
	}
	if r0.APIServerPodListSeconds > 0 {
		fmt.Fprintf(&b, "\nBefore the servers ran, the kube-apiserver alone listed every running pod's metadata (pages of 500, as a pod informer does at start) in %.1f s.\n", r0.APIServerPodListSeconds)
	}
	b.WriteString("\nLIST of every object, milliseconds p50 / p99 (runs, errors):\n\n| binary |")
	for _, k := range listKeys {
		b.WriteString(" " + k + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(listKeys)) + "\n")
	for _, r := range rs {
		b.WriteString("| " + r.Name + " |")
		for _, k := range listKeys {
			l := r.List[k]
			fmt.Fprintf(&b, " %.0f / %.0f (%d, %d) |", l.P50, l.P99, l.N, l.Errors)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// summarize reads every results-*.json in dir and writes summary.md (all
// sizes, with ratios to the compared binary) and plot.png.
func summarize(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "results-*.json"))
	if err != nil {
		return err
	}
	var all []Result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var rs []Result
		if err := json.Unmarshal(b, &rs); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, rs...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no results-*.json in %s", dir)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Nodes < all[j].Nodes })
	var b strings.Builder
	b.WriteString("| nodes | binary | CPU s/min | millicores/node | RSS steady MiB | KiB/node | first full list s (direct / apiserver) | cycle p50 / max s | LIST pods p50 ms (apiserver, protobuf) | p99 ms | LIST pods p50 ms (direct, protobuf) | requests/node/cycle |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.4f | %.0f | %.1f | %.1f / %.1f | %.2f / %.2f | %.0f | %.0f | %.0f | %.2f |\n",
			r.Nodes, r.Name, r.CPUSecondsPerMinute, r.MilliCoresPerNode, r.RSSSteadyMiB, r.KiBPerNode, r.FirstFullListDirectSeconds, r.FirstFullListSeconds,
			r.CycleP50, r.CycleMax, r.List["pods/apiserver/protobuf"].P50, r.List["pods/apiserver/protobuf"].P99, r.List["pods/direct/protobuf"].P50, r.KubeletRequestsPerNodePerCycle)
	}
	// Ratios where both binaries ran at one size.
	byNodes := map[int][]Result{}
	for _, r := range all {
		byNodes[r.Nodes] = append(byNodes[r.Nodes], r)
	}
	var sizes []int
	for n := range byNodes {
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)
	b.WriteString("\nRatios, kubemetrics / other binary at the same size (lower is better):\n\n| nodes | other | CPU | RSS | first full list | LIST pods p50 (apiserver, protobuf) |\n|---|---|---|---|---|---|\n")
	for _, n := range sizes {
		var ours *Result
		for i := range byNodes[n] {
			if byNodes[n][i].Name == "kubemetrics" {
				ours = &byNodes[n][i]
			}
		}
		if ours == nil {
			continue
		}
		for _, o := range byNodes[n] {
			if o.Name == "kubemetrics" {
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %.2f | %.2f |\n", n, o.Name, ratio(ours.CPUSecondsPerMinute, o.CPUSecondsPerMinute),
				ratio(ours.RSSSteadyMiB, o.RSSSteadyMiB), ratio(ours.FirstFullListSeconds, o.FirstFullListSeconds),
				ratio(ours.List["pods/apiserver/protobuf"].P50, o.List["pods/apiserver/protobuf"].P50))
		}
	}
	// Memory per added node between consecutive sizes: the slope, which
	// leaves out the idle process.
	b.WriteString("\nResident memory per added node between sizes (KiB/node, the slope; the idle process drops out):\n\n| binary | from | to | KiB/node |\n|---|---|---|---|\n")
	series := seriesOf(all)
	for _, name := range sortedKeys(series) {
		pts := series[name]
		for i := 1; i < len(pts); i++ {
			a, z := pts[i-1], pts[i]
			fmt.Fprintf(&b, "| %s | %d | %d | %.1f |\n", name, a.Nodes, z.Nodes, (z.RSSSteadyMiB-a.RSSSteadyMiB)*1024/float64(z.Nodes-a.Nodes))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := plot(filepath.Join(dir, "plot.png"), series); err != nil {
		return err
	}
	fmt.Println("wrote", filepath.Join(dir, "summary.md"), "and", filepath.Join(dir, "plot.png"))
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// seriesOf groups results by binary, each sorted by node count.
func seriesOf(all []Result) map[string][]Result {
	out := map[string][]Result{}
	for _, r := range all {
		out[r.Name] = append(out[r.Name], r)
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Nodes < rs[j].Nodes })
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
