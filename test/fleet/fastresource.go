package fleet

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The fast path writes /metrics/resource straight from a sample, byte for
// byte what the kubelet's collector and Prometheus' text encoder write for
// it (TestFastResourceIsTheKubelets holds it to that), in a tenth of their
// time. Config.FastResource picks it, for the fleet benchmark, where
// thousands of nodes are rendered every resolution on the same two cores
// as the servers under test.

// Families of the kubelet's resource collector that the fleet's samples
// fill, in the order the encoder sorts them (by name), with their HELP.
const (
	helpContainerCPU   = "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n"
	helpContainerMem   = "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n"
	helpContainerStart = "# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n"
	helpContainerSwap  = "# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems\n# TYPE container_swap_usage_bytes gauge\n"
	helpNodeCPU        = "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\n"
	helpNodeMem        = "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\n"
	helpNodeSwap       = "# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems\n# TYPE node_swap_usage_bytes gauge\n"
	helpPodCPU         = "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter\n"
	helpPodMem         = "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge\n"
	helpPodSwap        = "# HELP pod_swap_usage_bytes [ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems\n# TYPE pod_swap_usage_bytes gauge\n"
	scrapeErrorOK      = "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n"
)

// labelEscaper escapes label values as the text encoder does.
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// fastBuffers are reused across answers.
var fastBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// serveFastResource answers /metrics/resource with sample s,
// gzip-compressed when asked, as the kubelet's promhttp handler.
// processStart is the Unix second the kubelet process started, for the
// header promhttp sends.
func serveFastResource(w http.ResponseWriter, r *http.Request, s *statsapi.Summary, processStart string) {
	b := fastBuffers.Get().(*bytes.Buffer)
	b.Reset()
	writeResource(b, s)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
	w.Header().Set("Process-Start-Time-Unix", processStart)
	writeMaybeGzip(w, r, b.Bytes())
	fastBuffers.Put(b)
}

// seriesRef is one container's stats and its labels, for sorting.
type seriesRef struct {
	pod *statsapi.PodStats
	c   *statsapi.ContainerStats
}

// writeResource writes s as the kubelet's resource collector and the
// Prometheus text encoder write it: families by name, series by their
// label values (container, namespace, pod), values in Go's shortest 'g'
// form, millisecond timestamps.
func writeResource(b *bytes.Buffer, s *statsapi.Summary) {
	var refs []seriesRef
	pods := make([]*statsapi.PodStats, len(s.Pods))
	for i := range s.Pods {
		p := &s.Pods[i]
		pods[i] = p
		for j := range p.Containers {
			refs = append(refs, seriesRef{p, &p.Containers[j]})
		}
	}
	slices.SortFunc(refs, func(a, b seriesRef) int {
		return cmp.Or(strings.Compare(a.c.Name, b.c.Name), strings.Compare(a.pod.PodRef.Namespace, b.pod.PodRef.Namespace), strings.Compare(a.pod.PodRef.Name, b.pod.PodRef.Name))
	})
	slices.SortFunc(pods, func(a, b *statsapi.PodStats) int {
		return cmp.Or(strings.Compare(a.PodRef.Namespace, b.PodRef.Namespace), strings.Compare(a.PodRef.Name, b.PodRef.Name))
	})
	// The encoder writes a family only when it has a series.
	family := func(help string, line func(r seriesRef) bool) {
		mark := b.Len()
		b.WriteString(help)
		wrote := false
		for _, r := range refs {
			wrote = line(r) || wrote
		}
		if !wrote {
			b.Truncate(mark)
		}
	}
	family(helpContainerCPU, func(r seriesRef) bool {
		if r.c.CPU == nil || r.c.CPU.UsageCoreNanoSeconds == nil {
			return false
		}
		sample(b, "container_cpu_usage_seconds_total", r, nil, float64(*r.c.CPU.UsageCoreNanoSeconds)/float64(time.Second), &r.c.CPU.Time.Time)
		return true
	})
	family(helpContainerMem, func(r seriesRef) bool {
		if r.c.Memory == nil || r.c.Memory.WorkingSetBytes == nil {
			return false
		}
		sample(b, "container_memory_working_set_bytes", r, nil, float64(*r.c.Memory.WorkingSetBytes), &r.c.Memory.Time.Time)
		return true
	})
	family(helpContainerStart, func(r seriesRef) bool {
		if r.c.StartTime.Unix() <= 0 {
			return false
		}
		sample(b, "container_start_time_seconds", r, nil, float64(r.c.StartTime.UnixNano())/float64(time.Second), nil)
		return true
	})
	family(helpContainerSwap, func(r seriesRef) bool {
		if r.c.Swap == nil || r.c.Swap.SwapUsageBytes == nil {
			return false
		}
		sample(b, "container_swap_usage_bytes", r, nil, float64(*r.c.Swap.SwapUsageBytes), &r.c.Swap.Time.Time)
		return true
	})
	nodeSeries := func(help, name string, v float64, at *time.Time) {
		b.WriteString(help)
		sample(b, name, seriesRef{}, nil, v, at)
	}
	if cpu := s.Node.CPU; cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		nodeSeries(helpNodeCPU, "node_cpu_usage_seconds_total", float64(*cpu.UsageCoreNanoSeconds)/float64(time.Second), &cpu.Time.Time)
	}
	if mem := s.Node.Memory; mem != nil && mem.WorkingSetBytes != nil {
		nodeSeries(helpNodeMem, "node_memory_working_set_bytes", float64(*mem.WorkingSetBytes), &mem.Time.Time)
	}
	if swap := s.Node.Swap; swap != nil && swap.SwapUsageBytes != nil {
		nodeSeries(helpNodeSwap, "node_swap_usage_bytes", float64(*swap.SwapUsageBytes), &swap.Time.Time)
	}
	podFamily := func(help, name string, value func(p *statsapi.PodStats) (float64, *time.Time, bool)) {
		mark := b.Len()
		b.WriteString(help)
		wrote := false
		for _, p := range pods {
			if v, at, ok := value(p); ok {
				sample(b, name, seriesRef{}, p, v, at)
				wrote = true
			}
		}
		if !wrote {
			b.Truncate(mark)
		}
	}
	podFamily(helpPodCPU, "pod_cpu_usage_seconds_total", func(p *statsapi.PodStats) (float64, *time.Time, bool) {
		if p.CPU == nil || p.CPU.UsageCoreNanoSeconds == nil {
			return 0, nil, false
		}
		return float64(*p.CPU.UsageCoreNanoSeconds) / float64(time.Second), &p.CPU.Time.Time, true
	})
	podFamily(helpPodMem, "pod_memory_working_set_bytes", func(p *statsapi.PodStats) (float64, *time.Time, bool) {
		if p.Memory == nil || p.Memory.WorkingSetBytes == nil {
			return 0, nil, false
		}
		return float64(*p.Memory.WorkingSetBytes), &p.Memory.Time.Time, true
	})
	podFamily(helpPodSwap, "pod_swap_usage_bytes", func(p *statsapi.PodStats) (float64, *time.Time, bool) {
		if p.Swap == nil || p.Swap.SwapUsageBytes == nil {
			return 0, nil, false
		}
		return float64(*p.Swap.SwapUsageBytes), &p.Swap.Time.Time, true
	})
	b.WriteString(scrapeErrorOK)
}

// sample writes one line: a container's series (r.c set), a pod's (pod
// set) or the node's (neither), its value and, when at is set, its
// timestamp in milliseconds.
func sample(b *bytes.Buffer, name string, r seriesRef, pod *statsapi.PodStats, v float64, at *time.Time) {
	b.WriteString(name)
	switch {
	case r.c != nil:
		b.WriteString(`{container="`)
		labelEscaper.WriteString(b, r.c.Name)
		pod = r.pod
		b.WriteString(`",namespace="`)
	case pod != nil:
		b.WriteString(`{namespace="`)
	}
	if pod != nil {
		labelEscaper.WriteString(b, pod.PodRef.Namespace)
		b.WriteString(`",pod="`)
		labelEscaper.WriteString(b, pod.PodRef.Name)
		b.WriteString(`"}`)
	}
	b.WriteByte(' ')
	var num [32]byte
	b.Write(strconv.AppendFloat(num[:0], v, 'g', -1, 64))
	if at != nil {
		b.WriteByte(' ')
		b.Write(strconv.AppendInt(num[:0], at.Unix()*1000+int64(at.Nanosecond()/1e6), 10))
	}
	b.WriteByte('\n')
}
