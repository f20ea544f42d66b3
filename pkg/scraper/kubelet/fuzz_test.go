package kubelet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// The fuzz targets hold each decoder to a reference on the same input:
// /metrics/resource to github.com/prometheus/common/expfmt's text parser,
// /stats/summary to encoding/json into the kubelet's own stats types
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1). Both must accept with the
// same values or both refuse. Where the decoders differ on purpose, the
// reference's result is mapped through the documented rule here, so each
// difference is written down once (see DecodeResource and DecodeSummary).

func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeResource: DecodeResource agrees with expfmt.
func FuzzDecodeResource(f *testing.F) {
	addSeeds(f, "resource-*.txt")
	for _, s := range []string{
		"container_cpu_usage_seconds_total{container=\"a\\\"\",namespace=\"n\",pod=\"p\"} 1e3 1700000000000\n",
		"node_memory_working_set_bytes 2.74877906944e+11 1795515331000\nnode_cpu_usage_seconds_total 1.8446744073e+10 1795515331000\n",
		"container_memory_working_set_bytes{container=\"db\",namespace=\"shop\",pod=\"pg-0\"} 4.294967296e+10 1795515331000\n" +
			"container_start_time_seconds{container=\"db\",namespace=\"shop\",pod=\"pg-0\"} 1.7644001234567e+09\n",
		// Swap alone, for a node and for a container, with and without
		// timestamps; and the series not read beside them.
		"node_swap_usage_bytes 1.073741824e+09 1795515331412\n" +
			"container_swap_usage_bytes{container=\"db\",namespace=\"shop\",pod=\"pg-0\"} 0\n" +
			"container_swap_limit_bytes{container=\"db\",namespace=\"shop\",pod=\"pg-0\"} 4.294967296e+09 1795515331412\n" +
			"pod_swap_usage_bytes{namespace=\"shop\",pod=\"pg-0\"} 0 1795515331412\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeResource(bytes.NewReader(body), "n", requestTime)
		want, refErr := resourceReference(body)
		// expfmt groups samples by series; the decoder lists pods and
		// containers in the order of their first line.
		compareWithReference(t, body, got, err, want, refErr, nil,
			cmpopts.SortSlices(func(a, b points.Pod) bool { return a.Namespace+"\x00"+a.Name < b.Namespace+"\x00"+b.Name }),
			cmpopts.SortSlices(func(a, b points.Container) bool { return a.Name < b.Name }))
	})
}

// FuzzDecodeSummary: DecodeSummary agrees with encoding/json into the
// kubelet's stats types.
func FuzzDecodeSummary(f *testing.F) {
	addSeeds(f, "summary-*.json")
	for _, s := range []string{
		`{"pods":[{"podRef":{"name":"a","namespace":"b"},"containers":[{"name":"c","cpu":{"usageCoreNanoSeconds":1}}]}]}`,
		`{"node":{"startTime":"2026-11-20T08:00:00Z","cpu":{"time":"2026-11-24T10:15:31Z","usageCoreNanoSeconds":18446744073709551615},"memory":{"time":"2026-11-24T10:15:31.5+01:00","workingSetBytes":274877906944}},"pods":null}`,
		// Documented differences: a repeated key, a time longer than
		// maxTime; and keys matched under Unicode folding (U+212A, the
		// Kelvin sign, folds to k).
		`{"node":{"cpu":{"usageCoreNanoSeconds":1}},"pods":[],"pods":[]}`,
		`{"node":{"cpu":{"time":"2026-11-24T10:15:31.000000000000000000000000000000000000000000000000Z","usageCoreNanoSeconds":1}}}`,
		"{\"node\":{\"memory\":{\"wor\u212angSetBytes\":5}}}",
		`{"NODE":{"Cpu":{"usageCORENanoSeconds":5,"time":null}},"pods":[null,{"podRef":null},{"podRef":{"name":"\u00e9\ud800x","namespace":"n"},"containers":[{"name":"c\/d","memory":{"workingSetBytes":19327352832}}]}]}`,
		// Swap and filesystems as a full summary has them: node fs,
		// container rootfs and logs (logs alone count nothing), a sum
		// past 2^64, nulls, and the fields not read beside them.
		`{"node":{"cpu":{"usageCoreNanoSeconds":1},"swap":{"time":"2026-11-24T10:15:31Z","swapAvailableBytes":7516192768,"swapUsageBytes":1073741824},"fs":{"time":"2026-11-24T10:15:31Z","availableBytes":1,"capacityBytes":2,"usedBytes":53687091200,"inodesUsed":9},"runtime":{"imageFs":{"usedBytes":7}}},` +
			`"pods":[{"podRef":{"name":"a","namespace":"b"},"containers":[` +
			`{"name":"c","swap":{"swapUsageBytes":0},"rootfs":{"time":"2026-11-24T10:15:31Z","usedBytes":4096,"inodesUsed":3},"logs":{"usedBytes":8192}},` +
			`{"name":"d","rootfs":{"usedBytes":18446744073709551615},"logs":{"usedBytes":1}},` +
			`{"name":"e","logs":{"usedBytes":1},"swap":null,"rootfs":{"usedBytes":null}}],` +
			`"volume":[{"name":"v","usedBytes":5}],"ephemeral-storage":{"usedBytes":12293}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeSummary(bytes.NewReader(body), "n", requestTime)
		want, refErr := summaryReference(body)
		compareWithReference(t, body, got, err, want, refErr, func(err error) bool {
			// A repeated key is refused on purpose (DecodeSummary);
			// encoding/json merges repeats.
			return strings.Contains(err.Error(), "appears twice") && summaryShape(body).repeated
		})
	})
}

// compareWithReference fails unless both decoders refuse the body or both
// accept it with the same batch. excused, when not nil, says whether our
// refusal is a documented one the reference cannot see.
func compareWithReference(t *testing.T, body []byte, got *points.Batch, err error, want *points.Batch, refErr error, excused func(error) bool, opts ...cmp.Option) {
	t.Helper()
	switch {
	case err != nil && refErr != nil:
	case err != nil:
		if excused != nil && excused(err) {
			return
		}
		t.Fatalf("we refuse what the reference accepts:\nbody %q\nour error: %v\nreference: %+v", body, err, want)
	case refErr != nil:
		t.Fatalf("we accept what the reference refuses:\nbody %q\nreference error: %v\nours: %+v", body, refErr, got)
	default:
		if diff := cmp.Diff(want, got, append(opts, batchContent, cmpopts.EquateEmpty())...); diff != "" {
			t.Fatalf("decoded batch differs from the reference's for body %q (-reference +ours):\n%s", body, diff)
		}
		checkBatch(t, got)
	}
}

var ourSeries = []string{seriesNodeCPU, seriesNodeMemory, seriesContainerCPU, seriesContainerMemory, seriesContainerStart, seriesNodeSwap, seriesContainerSwap}

// resourceReference decodes body with expfmt and maps the result through
// DecodeResource's documented rules: only the lines of our series count
// (comments and other lines are dropped before expfmt sees the body);
// values finite, not negative and in range; timestamps in 1970..2200;
// container samples with non-empty, bounded names; bounded counts; the
// last sample of a series and container wins; a sample without timestamp
// gets the request time; a point's timestamp is its CPU sample's, else its
// memory sample's (swap samples' never), else the request time's.
func resourceReference(body []byte) (*points.Batch, error) {
	var kept []byte
	lines := bytes.SplitAfter(body, []byte("\n"))
	for _, l := range lines {
		s := bytes.TrimLeft(l, " \t")
		end := bytes.IndexAny(s, "{ \t\n")
		if end < 0 {
			end = len(s)
		}
		if slices.Contains(ourSeries, string(s[:end])) {
			kept = append(kept, l...)
		}
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(kept))
	if err != nil {
		return nil, err
	}
	now := requestTime.UnixNano()
	type key struct{ ns, pod, c string }
	type entry struct {
		p                points.Point
		cpuTS, memTS     int64
		hasCPUTS, hasMem bool
	}
	var node entry
	conts := map[key]*entry{}
	var order []key
	pods := map[[2]string]bool{}
	nameBytes := 0
	for _, series := range ourSeries {
		mf := families[series]
		if mf == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetUntyped().GetValue()
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, errors.New("not finite or negative")
			}
			switch series {
			case seriesNodeMemory, seriesContainerMemory, seriesNodeSwap, seriesContainerSwap:
				if v >= 1<<64 {
					return nil, errors.New("memory past 2^64 bytes")
				}
			case seriesContainerStart:
				if v*1e9 >= 1<<63 {
					return nil, errors.New("start time past 2^63 ns")
				}
			default:
				if v*1e9 >= 1<<64 {
					return nil, errors.New("CPU past 2^64 ns")
				}
			}
			ts := now
			if m.TimestampMs != nil {
				ms := m.GetTimestampMs()
				if ms <= 0 || ms > 7258118400000 {
					return nil, errors.New("timestamp out of range")
				}
				ts = ms * int64(time.Millisecond)
			}
			e := &node
			if !strings.HasPrefix(series, "node_") {
				var k key
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "container":
						k.c = l.GetValue()
					case "namespace":
						k.ns = l.GetValue()
					case "pod":
						k.pod = l.GetValue()
					}
				}
				if k.c == "" || k.ns == "" || k.pod == "" {
					return nil, errors.New("lacks a label")
				}
				if len(k.ns) > maxNamespace || len(k.pod) > maxPodName || len(k.c) > maxContainerName {
					return nil, errors.New("name too long")
				}
				if e = conts[k]; e == nil {
					if !pods[[2]string{k.ns, k.pod}] {
						pods[[2]string{k.ns, k.pod}] = true
						nameBytes += len(k.ns) + len(k.pod)
					}
					nameBytes += len(k.c)
					e = &entry{}
					conts[k] = e
					order = append(order, k)
				}
			}
			switch series {
			case seriesNodeCPU, seriesContainerCPU:
				e.p.CPU, e.p.Has = uint64(math.Round(v*1e9)), e.p.Has|points.HasCPU
				e.cpuTS, e.hasCPUTS = ts, true
			case seriesNodeMemory, seriesContainerMemory:
				e.p.Memory, e.p.Has = uint64(math.Round(v)), e.p.Has|points.HasMemory
				e.memTS, e.hasMem = ts, true
			case seriesContainerStart:
				e.p.StartTime = int64(math.Round(v * 1e9))
			case seriesNodeSwap, seriesContainerSwap:
				e.p.Swap, e.p.Has = uint64(math.Round(v)), e.p.Has|points.HasSwap
			}
		}
	}
	if len(pods) > maxPods || len(conts) > maxContainers || nameBytes > maxNameBytes {
		return nil, errors.New("past the bounds")
	}
	if node.p.Has == 0 && len(conts) == 0 {
		return nil, errors.New("none of our series")
	}
	stamp := func(e *entry, dflt int64) points.Point {
		pt := e.p
		switch {
		case e.hasCPUTS:
			pt.Timestamp = e.cpuTS
		case e.hasMem:
			pt.Timestamp = e.memTS
		default:
			pt.Timestamp = dflt
		}
		return pt
	}
	nodeDefault := int64(0)
	if node.p.Has != 0 {
		nodeDefault = now
	}
	b := &points.Batch{Node: "n", NodePoint: stamp(&node, nodeDefault)}
	// Pods in order of their first container, as the decoder lists them;
	// expfmt groups by series, so the order here is by series, then line.
	// The decoder's order is by line: compare sorted.
	podAt := map[[2]string]int{}
	for _, k := range order {
		pk := [2]string{k.ns, k.pod}
		i, ok := podAt[pk]
		if !ok {
			i = len(b.Pods)
			podAt[pk] = i
			b.Pods = append(b.Pods, points.Pod{Namespace: k.ns, Name: k.pod})
		}
		b.Pods[i].Containers = append(b.Pods[i].Containers, points.Container{Name: k.c, Point: stamp(conts[k], now)})
	}
	return b, nil
}

// summaryRef is the part of v1alpha1.Summary DecodeSummary reads, with
// the kubelet's own field types: encoding/json checks these and nothing
// else, as DecodeSummary does.
type summaryRef struct {
	Node struct {
		StartTime metav1.Time `json:"startTime"`
		CPURef    *cpuRef     `json:"cpu"`
		MemoryRef *memoryRef  `json:"memory"`
		Swap      *swapRef    `json:"swap"`
		Fs        *fsRef      `json:"fs"`
	} `json:"node"`
	Pods []struct {
		PodRef struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"podRef"`
		Containers []struct {
			Name      string      `json:"name"`
			StartTime metav1.Time `json:"startTime"`
			CPU       *cpuRef     `json:"cpu"`
			Memory    *memoryRef  `json:"memory"`
			Swap      *swapRef    `json:"swap"`
			Rootfs    *fsRef      `json:"rootfs"`
			Logs      *fsRef      `json:"logs"`
		} `json:"containers"`
	} `json:"pods"`
}

type cpuRef struct {
	Time                 metav1.Time `json:"time"`
	UsageCoreNanoSeconds *uint64     `json:"usageCoreNanoSeconds"`
}

type memoryRef struct {
	Time            metav1.Time `json:"time"`
	WorkingSetBytes *uint64     `json:"workingSetBytes"`
}

type swapRef struct {
	Time           metav1.Time `json:"time"`
	SwapUsageBytes *uint64     `json:"swapUsageBytes"`
}

type fsRef struct {
	Time      metav1.Time `json:"time"`
	UsedBytes *uint64     `json:"usedBytes"`
}

// extras maps swap and filesystem stats through DecodeSummary's rules:
// swap is swapUsageBytes; ephemeral storage the node's fs usedBytes, or
// a container's rootfs usedBytes plus its logs usedBytes when present,
// saturating at 2^64-1; each present when its first term is.
func extras(p *points.Point, swap *swapRef, fs, rootfs, logs *fsRef) {
	if swap != nil && swap.SwapUsageBytes != nil {
		p.Swap, p.Has = *swap.SwapUsageBytes, p.Has|points.HasSwap
	}
	switch {
	case fs != nil && fs.UsedBytes != nil:
		p.EphemeralStorage, p.Has = *fs.UsedBytes, p.Has|points.HasEphemeralStorage
	case rootfs != nil && rootfs.UsedBytes != nil:
		sum := new(big.Int).SetUint64(*rootfs.UsedBytes)
		if logs != nil && logs.UsedBytes != nil {
			sum.Add(sum, new(big.Int).SetUint64(*logs.UsedBytes))
		}
		p.EphemeralStorage = math.MaxUint64
		if sum.IsUint64() {
			p.EphemeralStorage = sum.Uint64()
		}
		p.Has |= points.HasEphemeralStorage
	}
}

// summaryReference decodes body with encoding/json into the kubelet's
// Summary (and into summaryRef, which a body whose unread fields do not
// type-check still decodes into) and maps the result through
// DecodeSummary's documented rules.
func summaryReference(body []byte) (*points.Batch, error) {
	var ref summaryRef
	if err := json.Unmarshal(body, &ref); err != nil {
		return nil, err
	}
	var full statsv1alpha1.Summary
	if err := json.Unmarshal(body, &full); err == nil {
		// The kubelet's types and ours read the same values.
		if err := sameAsKubelet(&ref, &full); err != nil {
			return nil, fmt.Errorf("reference types disagree: %w", err)
		}
	}
	if summaryShape(body).longTime {
		return nil, errors.New("a time string longer than maxTime")
	}
	now := requestTime.UnixNano()
	conts := 0
	for _, p := range ref.Pods {
		if len(p.PodRef.Name) > maxPodName || len(p.PodRef.Namespace) > maxNamespace {
			return nil, errors.New("name too long")
		}
		for _, c := range p.Containers {
			if len(c.Name) > maxContainerName {
				return nil, errors.New("name too long")
			}
		}
		conts += len(p.Containers)
	}
	if len(ref.Pods) > maxPods || conts > maxContainers {
		return nil, errors.New("past the bounds")
	}
	// Times: zero is absent, else in years 1970..2200. A point's
	// timestamp is its CPU sample's, else its memory sample's, else now.
	nanos := func(t metav1.Time) (int64, error) {
		if t.IsZero() {
			return 0, nil
		}
		if y := t.Year(); y < 1970 || y > 2200 {
			return 0, errors.New("time out of range")
		}
		return t.UnixNano(), nil
	}
	point := func(start metav1.Time, cpu *cpuRef, mem *memoryRef) (points.Point, error) {
		var p points.Point
		var err error
		if p.StartTime, err = nanos(start); err != nil {
			return p, err
		}
		if mem != nil && mem.WorkingSetBytes != nil {
			p.Memory, p.Has = *mem.WorkingSetBytes, points.HasMemory
			if p.Timestamp, err = nanos(mem.Time); err != nil {
				return p, err
			}
		}
		if cpu != nil && cpu.UsageCoreNanoSeconds != nil {
			p.CPU, p.Has = *cpu.UsageCoreNanoSeconds, p.Has|points.HasCPU
			ts, err := nanos(cpu.Time)
			if err != nil {
				return p, err
			}
			if ts != 0 {
				p.Timestamp = ts
			}
		}
		if p.Timestamp == 0 {
			p.Timestamp = now
		}
		return p, nil
	}
	b := &points.Batch{Node: "n"}
	nameBytes := 0
	for _, p := range ref.Pods {
		if p.PodRef.Name == "" || p.PodRef.Namespace == "" {
			continue
		}
		pod := points.Pod{Namespace: p.PodRef.Namespace, Name: p.PodRef.Name}
		nameBytes += len(pod.Namespace) + len(pod.Name)
		for _, c := range p.Containers {
			if c.Name == "" {
				return nil, errors.New("container without a name")
			}
			nameBytes += len(c.Name)
			pt, err := point(c.StartTime, c.CPU, c.Memory)
			if err != nil {
				return nil, err
			}
			extras(&pt, c.Swap, nil, c.Rootfs, c.Logs)
			pod.Containers = append(pod.Containers, points.Container{Name: c.Name, Point: pt})
		}
		if nameBytes > maxNameBytes {
			return nil, errors.New("past the bounds")
		}
		b.Pods = append(b.Pods, pod)
	}
	var err error
	if b.NodePoint, err = point(ref.Node.StartTime, ref.Node.CPURef, ref.Node.MemoryRef); err != nil {
		return nil, err
	}
	extras(&b.NodePoint, ref.Node.Swap, ref.Node.Fs, nil, nil)
	if b.NodePoint.Has == 0 && len(b.Pods) == 0 {
		return nil, errors.New("neither node nor pod stats")
	}
	return b, nil
}

// sameAsKubelet checks that summaryRef read what the kubelet's types read.
func sameAsKubelet(ref *summaryRef, full *statsv1alpha1.Summary) error {
	type vals struct {
		Start, CPUTime, MemTime, SwapTime, FsTime time.Time
		CPU, Mem, Swap, Fs                        *uint64
	}
	fromRef := func(start metav1.Time, c *cpuRef, m *memoryRef, s *swapRef, fs *fsRef) vals {
		v := vals{Start: start.Time}
		if c != nil {
			v.CPUTime, v.CPU = c.Time.Time, c.UsageCoreNanoSeconds
		}
		if m != nil {
			v.MemTime, v.Mem = m.Time.Time, m.WorkingSetBytes
		}
		if s != nil {
			v.SwapTime, v.Swap = s.Time.Time, s.SwapUsageBytes
		}
		if fs != nil {
			v.FsTime, v.Fs = fs.Time.Time, fs.UsedBytes
		}
		return v
	}
	fromFull := func(start metav1.Time, c *statsv1alpha1.CPUStats, m *statsv1alpha1.MemoryStats, s *statsv1alpha1.SwapStats, fs *statsv1alpha1.FsStats) vals {
		v := vals{Start: start.Time}
		if c != nil {
			v.CPUTime, v.CPU = c.Time.Time, c.UsageCoreNanoSeconds
		}
		if m != nil {
			v.MemTime, v.Mem = m.Time.Time, m.WorkingSetBytes
		}
		if s != nil {
			v.SwapTime, v.Swap = s.Time.Time, s.SwapUsageBytes
		}
		if fs != nil {
			v.FsTime, v.Fs = fs.Time.Time, fs.UsedBytes
		}
		return v
	}
	var a, b []vals
	var an, bn []string
	a = append(a, fromRef(ref.Node.StartTime, ref.Node.CPURef, ref.Node.MemoryRef, ref.Node.Swap, ref.Node.Fs))
	b = append(b, fromFull(full.Node.StartTime, full.Node.CPU, full.Node.Memory, full.Node.Swap, full.Node.Fs))
	for _, p := range ref.Pods {
		an = append(an, p.PodRef.Namespace+"/"+p.PodRef.Name)
		for _, c := range p.Containers {
			an = append(an, c.Name)
			a = append(a, fromRef(c.StartTime, c.CPU, c.Memory, c.Swap, c.Rootfs), fromRef(metav1.Time{}, nil, nil, nil, c.Logs))
		}
	}
	for _, p := range full.Pods {
		bn = append(bn, p.PodRef.Namespace+"/"+p.PodRef.Name)
		for _, c := range p.Containers {
			bn = append(bn, c.Name)
			b = append(b, fromFull(c.StartTime, c.CPU, c.Memory, c.Swap, c.Rootfs), fromFull(metav1.Time{}, nil, nil, nil, c.Logs))
		}
	}
	if diff := cmp.Diff(an, bn); diff != "" {
		return errors.New(diff)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		return errors.New(diff)
	}
	return nil
}

// shape is what a token walk of a summary body finds that encoding/json's
// result does not show: a key DecodeSummary reads repeated in an object
// it reads, and a time string longer than maxTime bytes.
type shape struct{ repeated, longTime bool }

// schema is the part of the summary DecodeSummary reads: an object's keys
// and their schemas, or an array's element schema; leaf marks a time.
type schema struct {
	keys map[string]*schema
	elem *schema
	time bool
}

var summarySchema = func() *schema {
	leaf, tm := &schema{}, &schema{time: true}
	cpu := &schema{keys: map[string]*schema{"time": tm, "usageCoreNanoSeconds": leaf}}
	mem := &schema{keys: map[string]*schema{"time": tm, "workingSetBytes": leaf}}
	swap := &schema{keys: map[string]*schema{"time": tm, "swapUsageBytes": leaf}}
	fs := &schema{keys: map[string]*schema{"time": tm, "usedBytes": leaf}}
	container := &schema{keys: map[string]*schema{"name": leaf, "startTime": tm, "cpu": cpu, "memory": mem, "swap": swap, "rootfs": fs, "logs": fs}}
	pod := &schema{keys: map[string]*schema{
		"podRef":     {keys: map[string]*schema{"name": leaf, "namespace": leaf}},
		"containers": {elem: container},
	}}
	return &schema{keys: map[string]*schema{
		"node": {keys: map[string]*schema{"startTime": tm, "cpu": cpu, "memory": mem, "swap": swap, "fs": fs}},
		"pods": {elem: pod},
	}}
}()

func summaryShape(body []byte) shape {
	var sh shape
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func(s *schema) error
	walk = func(s *schema) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				var child *schema
				if s != nil {
					for name, c := range s.keys {
						if strings.EqualFold(k.(string), name) {
							if seen[name] {
								sh.repeated = true
							}
							seen[name], child = true, c
						}
					}
				}
				if err := walk(child); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			var elem *schema
			if s != nil {
				elem = s.elem
			}
			for dec.More() {
				if err := walk(elem); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		if str, ok := tok.(string); ok && s != nil && s.time && len(str) > maxTime {
			sh.longTime = true
		}
		return nil
	}
	_ = walk(summarySchema) // a body that is not JSON has no shape to speak of
	return sh
}

func checkBatch(t *testing.T, b *points.Batch) {
	t.Helper()
	if b.Node != "n" {
		t.Fatalf("batch of node %q, want n", b.Node)
	}
	if b.NodePoint.Has != 0 && b.NodePoint.Timestamp <= 0 {
		t.Fatalf("node point without a timestamp: %+v", b.NodePoint)
	}
	for _, p := range b.Pods {
		if p.Namespace == "" || p.Name == "" {
			t.Fatalf("pod without namespace or name: %+v", p)
		}
		for _, c := range p.Containers {
			if c.Name == "" || c.Timestamp <= 0 {
				t.Fatalf("pod %s/%s: container without name or timestamp: %+v", p.Namespace, p.Name, c)
			}
		}
	}
}
