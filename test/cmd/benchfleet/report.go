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

// writeJSON writes one fleet size's results.
func writeJSON(path string, rs []Result) error {
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
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
	if rs[0].List["pods/apiserver/protobuf"].APIServerCPUMs > 0 {
		b.WriteString("\nThe kube-apiserver's CPU per LIST through it, milliseconds (its utime+stime over the calls above, divided by their number):\n\n| binary |")
		var through []string
		for _, k := range listKeys {
			if strings.Contains(k, "/apiserver/") {
				through = append(through, k)
				b.WriteString(" " + k + " |")
			}
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(through)) + "\n")
		for _, r := range rs {
			b.WriteString("| " + r.Name + " |")
			for _, k := range through {
				fmt.Fprintf(&b, " %.1f |", r.List[k].APIServerCPUMs)
			}
			b.WriteString("\n")
		}
	}
	consumerLoad(&b, rs)
	apiserverLoad(&b, rs)
	return b.String()
}

// consumerLoad renders the descheduler pattern's cost beside each server's
// steady window without it, when it ran.
func consumerLoad(b *strings.Builder, rs []Result) {
	var c0 *ConsumerLoad
	for _, r := range rs {
		if r.Consumer != nil {
			c0 = r.Consumer
			break
		}
	}
	if c0 == nil {
		return
	}
	fmt.Fprintf(b, "\nThe descheduler's pattern after the LISTs: a GET of every node's NodeMetrics through the kube-apiserver (JSON), each node once every %gs, spread over the period, for %.0f s; CPU beside the steady window's without it:\n\n", c0.PeriodSeconds, c0.WindowSeconds)
	b.WriteString("| binary | GETs/s (wanted) | p50 / p99 ms | errors | rounds late | server CPU s/min (steady) | kube-apiserver CPU s/min (steady) |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		c := r.Consumer
		if c == nil {
			continue
		}
		steadyAPI := "-"
		if r.APIServer != nil {
			steadyAPI = fmt.Sprintf("%.2f", r.APIServer.CPUSecondsPerMinute)
		}
		fmt.Fprintf(b, "| %s | %.0f (%.0f) | %.1f / %.1f | %d of %d | %d of %d | %.2f (%.2f) | %.2f (%s) |\n", r.Name, c.PerSecond, c.WantPerSecond, c.P50, c.P99,
			c.Errors, c.Requests, c.LateRounds, c.Rounds, c.ServerCPUSecondsPerMinute, r.CPUSecondsPerMinute, c.APIServerCPUSecondsPerMinute, steadyAPI)
	}
}

// apiserverLoad renders the kube-apiserver's CPU and requests in each
// server's steady window, beside the idle window's, when measured.
func apiserverLoad(b *strings.Builder, rs []Result) {
	var names []string
	var loads []*APIServerLoad
	if idle := rs[0].APIServerIdle; idle != nil {
		names, loads = append(names, "no server (idle)"), append(loads, idle)
	}
	for _, r := range rs {
		if r.APIServer != nil {
			names, loads = append(names, r.Name), append(loads, r.APIServer)
		}
	}
	if len(loads) == 0 || (len(loads) == 1 && rs[0].APIServerIdle != nil) {
		return
	}
	var idleCPU float64
	if rs[0].APIServerIdle != nil {
		idleCPU = rs[0].APIServerIdle.CPUSecondsPerMinute
	}
	b.WriteString("\nThe kube-apiserver in each steady window (CPU: utime+stime of its process; requests: its apiserver_request_total, a minute):\n\n")
	b.WriteString("| while running | kube-apiserver CPU s/min | above idle | allocated MiB/min | GC cycles/min | requests/min | requests/min by the server's user (audit) | requests/min to the server (its audit log) |\n|---|---|---|---|---|---|---|---|\n")
	for i, l := range loads {
		above := "-"
		if rs[0].APIServerIdle != nil && l != rs[0].APIServerIdle {
			above = fmt.Sprintf("%.2f", l.CPUSecondsPerMinute-idleCPU)
		}
		fmt.Fprintf(b, "| %s | %.2f | %s | %.0f | %.1f | %.1f | %.1f | %.1f |\n", names[i], l.CPUSecondsPerMinute, above, l.AllocMiBPerMinute, l.GCPerMinute,
			total(l.Requests, nil), total(l.Audit, func(r RequestCount) bool { return r.User == serverUser }), total(l.ServerAudit, nil))
	}
	cols := func(pick func(*APIServerLoad) []RequestCount) [][]RequestCount {
		out := make([][]RequestCount, len(loads))
		for i, l := range loads {
			out[i] = pick(l)
		}
		return out
	}
	b.WriteString("\nRequests the kube-apiserver served, a minute (apiserver_request_total):\n\n")
	sideBySide(b, []string{"verb", "resource", "code"}, names, cols(func(l *APIServerLoad) []RequestCount { return l.Requests }),
		func(r RequestCount) []string { return []string{r.Verb, r.Resource, r.Code} })
	if anyOf(loads, func(l *APIServerLoad) bool { return len(l.Audit) > 0 }) {
		b.WriteString("\nThe same by user and user agent, a minute (the kube-apiserver's audit log; requests received in the window):\n\n")
		sideBySide(b, []string{"user", "user agent", "verb", "resource or path", "code"}, names, cols(func(l *APIServerLoad) []RequestCount { return l.Audit }),
			func(r RequestCount) []string { return []string{r.User, r.UserAgent, r.Verb, r.Resource, r.Code} })
	}
	if anyOf(loads, func(l *APIServerLoad) bool { return len(l.ServerAudit) > 0 }) {
		b.WriteString("\nRequests the server under test received, a minute (its own audit log: the aggregator's discovery, OpenAPI and availability checks, and what it proxied):\n\n")
		sideBySide(b, []string{"user", "user agent", "verb", "resource or path", "code"}, names, cols(func(l *APIServerLoad) []RequestCount { return l.ServerAudit }),
			func(r RequestCount) []string { return []string{r.User, r.UserAgent, r.Verb, r.Resource, r.Code} })
	}
	if anyOf(loads, func(l *APIServerLoad) bool { return len(l.Counters) > 0 }) {
		b.WriteString("\nOther counters of the kube-apiserver that moved, a minute (watch events sent, the aggregator's work):\n\n")
		counters := cols(func(l *APIServerLoad) []RequestCount {
			var out []RequestCount
			for k, v := range l.Counters {
				out = append(out, RequestCount{Resource: k, PerMin: v})
			}
			return out
		})
		sideBySide(b, []string{"counter"}, names, counters, func(r RequestCount) []string { return []string{"`" + r.Resource + "`"} })
	}
}

// serverUser is the identity both servers run as in the benchmark.
const serverUser = "system:serviceaccount:kube-system:metrics-server"

func total(rs []RequestCount, keep func(RequestCount) bool) float64 {
	var n float64
	for _, r := range rs {
		if keep == nil || keep(r) {
			n += r.PerMin
		}
	}
	return n
}

func anyOf(loads []*APIServerLoad, f func(*APIServerLoad) bool) bool {
	for _, l := range loads {
		if f(l) {
			return true
		}
	}
	return false
}

// sideBySide writes one row per distinct key (by keyCols) and one count
// column per set, rows by the largest count first; a set without the key
// shows 0.
func sideBySide(b *strings.Builder, keyNames, setNames []string, sets [][]RequestCount, keyCols func(RequestCount) []string) {
	type row struct {
		cols   []string
		counts []float64
		max    float64
	}
	rows := map[string]*row{}
	for i, set := range sets {
		for _, r := range set {
			kc := keyCols(r)
			k := strings.Join(kc, "\x00")
			if rows[k] == nil {
				rows[k] = &row{cols: kc, counts: make([]float64, len(sets))}
			}
			rows[k].counts[i] += r.PerMin
			rows[k].max = max(rows[k].max, rows[k].counts[i])
		}
	}
	var order []*row
	for _, r := range rows {
		order = append(order, r)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].max != order[j].max {
			return order[i].max > order[j].max
		}
		return strings.Join(order[i].cols, " ") < strings.Join(order[j].cols, " ")
	})
	b.WriteString("| " + strings.Join(keyNames, " | ") + " | " + strings.Join(setNames, " | ") + " |\n|")
	b.WriteString(strings.Repeat("---|", len(keyNames)+len(setNames)) + "\n")
	for _, r := range order {
		cells := append([]string{}, r.cols...)
		for i := range cells {
			if cells[i] == "" {
				cells[i] = "-"
			}
		}
		for _, c := range r.counts {
			cells = append(cells, fmt.Sprintf("%.1f", c))
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	if len(order) == 0 {
		b.WriteString("| (none) |" + strings.Repeat(" |", len(keyNames)+len(setNames)-1) + "\n")
	}
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
	b.WriteString("| nodes | binary | CPU s/min | millicores/node | RSS steady MiB | KiB/node | first full list s (direct / apiserver) | cycle p50 / max s | LIST pods p50 ms (apiserver, protobuf) | p99 ms | LIST pods p50 ms (direct, protobuf) | requests/node/cycle | kube-apiserver CPU s/min (idle) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.4f | %.0f | %.1f | %.1f / %.1f | %.2f / %.2f | %.0f | %.0f | %.0f | %.2f | %s |\n",
			r.Nodes, r.Name, r.CPUSecondsPerMinute, r.MilliCoresPerNode, r.RSSSteadyMiB, r.KiBPerNode, r.FirstFullListDirectSeconds, r.FirstFullListSeconds,
			r.CycleP50, r.CycleMax, r.List["pods/apiserver/protobuf"].P50, r.List["pods/apiserver/protobuf"].P99, r.List["pods/direct/protobuf"].P50, r.KubeletRequestsPerNodePerCycle,
			apiserverCPU(r))
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
	b.WriteString("\nRatios, kubemetrics / other binary at the same size (lower is better):\n\n| nodes | other | CPU | RSS | first full list | LIST pods p50 (apiserver, protobuf) | kube-apiserver CPU | kube-apiserver CPU above idle |\n|---|---|---|---|---|---|---|---|\n")
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
			fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %.2f | %.2f | %s | %s |\n", n, o.Name, ratio(ours.CPUSecondsPerMinute, o.CPUSecondsPerMinute),
				ratio(ours.RSSSteadyMiB, o.RSSSteadyMiB), ratio(ours.FirstFullListSeconds, o.FirstFullListSeconds),
				ratio(ours.List["pods/apiserver/protobuf"].P50, o.List["pods/apiserver/protobuf"].P50),
				apiserverRatio(*ours, o, false), apiserverRatio(*ours, o, true))
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

// apiserverCPU is the kube-apiserver's CPU in a result's steady window,
// with the idle window's in parentheses; "-" when not measured.
func apiserverCPU(r Result) string {
	if r.APIServer == nil {
		return "-"
	}
	if r.APIServerIdle == nil {
		return fmt.Sprintf("%.2f", r.APIServer.CPUSecondsPerMinute)
	}
	return fmt.Sprintf("%.2f (%.2f)", r.APIServer.CPUSecondsPerMinute, r.APIServerIdle.CPUSecondsPerMinute)
}

// apiserverRatio is ours / other of the kube-apiserver's CPU, or of what
// it spent above its idle window (then only for results of one run, which
// share the idle window).
func apiserverRatio(ours, other Result, aboveIdle bool) string {
	if ours.APIServer == nil || other.APIServer == nil {
		return "-"
	}
	a, b := ours.APIServer.CPUSecondsPerMinute, other.APIServer.CPUSecondsPerMinute
	if aboveIdle {
		if ours.APIServerIdle == nil || other.APIServerIdle == nil || ours.APIServerIdle.CPUSecondsPerMinute != other.APIServerIdle.CPUSecondsPerMinute {
			return "-"
		}
		a -= ours.APIServerIdle.CPUSecondsPerMinute
		b -= other.APIServerIdle.CPUSecondsPerMinute
	}
	return fmt.Sprintf("%.2f", ratio(a, b))
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
