package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	testclock "k8s.io/utils/clock/testing"
)

// testNode is node i of a fleet with DefaultShape, and pods pods of two
// containers each; pod 0's first container uses memory0.
func testNode(t testing.TB, i, pods int, memory0 int64) (*Fleet, *node) {
	t.Helper()
	f, err := New(Config{Nodes: i + 1, Prefix: "n", Clock: testclock.NewFakePassiveClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	n := f.nodes[i]
	podStart := n.start.Add(10*time.Minute + 123456789*time.Nanosecond)
	for p := range pods {
		uid := fmt.Sprintf("uid-%d", p)
		pp := &pod{namespace: "ns", name: fmt.Sprintf("p%02d", p), uid: uid, node: n.name, start: podStart}
		for j, mem := range []int64{64 << 20, 32 << 20} {
			if p == 0 && j == 0 {
				mem = memory0
			}
			cs := containerStart(podStart, "uid", j)
			pp.containers = append(pp.containers, container{name: fmt.Sprintf("c%d", j), cpu: newCounter(cs, usage{milliCPU: 250, memory: mem})})
		}
		n.pods["ns/"+pp.name] = pp
	}
	return f, n
}

// get asks the node's kubelet for path as Go's client would (gzip
// accepted) and returns the decoded body.
func get(t testing.TB, f *Fleet, n *node, path string) []byte {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	w := httptest.NewRecorder()
	f.handler(n).ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

// TestFormatsAsTheKubeletWritesThem reads a large node's two answers with
// reference decoders (Prometheus' text parser, encoding/json into the
// kubelet's stats types) and checks values and the precision of each
// format: millisecond sample times and sub-second start times in
// /metrics/resource, whole seconds in /stats/summary.
func TestFormatsAsTheKubeletWritesThem(t *testing.T) {
	f, n := testNode(t, 2, 3, 18<<30)
	if n.shape.Cores < 24 || n.shape.SystemMemory < 40<<30 {
		t.Fatalf("node 2 is %+v, want a large machine", n.shape)
	}
	now := n.clock.Now()
	at := n.sampleTime(now)
	if at.After(now) || now.Sub(at) >= n.every || at.Nanosecond() == 0 {
		t.Fatalf("sample time %v for a request at %v: not the latest sub-second point of the grid", at, now)
	}

	var sum statsapi.Summary
	body := get(t, f, n, "/stats/summary?only_cpu_and_memory=true")
	if err := json.Unmarshal(body, &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, body)
	}
	if !bytes.Contains(body, []byte("\n ")) {
		t.Errorf("summary is not indented as the kubelet's go-restful handler writes it:\n%.200s", body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(get(t, f, n, "/metrics/resource")))
	if err != nil {
		t.Fatal(err)
	}

	// Summary: whole seconds everywhere.
	wantSec := at.Truncate(time.Second)
	if !sum.Node.CPU.Time.Time.Equal(wantSec) || !sum.Node.Memory.Time.Time.Equal(wantSec) {
		t.Errorf("summary node times %v %v, want %v", sum.Node.CPU.Time, sum.Node.Memory.Time, wantSec)
	}
	var wantNodeCPU uint64
	wantNodeMem := n.shape.SystemMemory
	self, _, _ := n.self.read(at)
	wantNodeCPU += self
	for _, p := range sum.Pods {
		sp := n.pods["ns/"+p.PodRef.Name]
		if !p.StartTime.Time.Equal(sp.start.Truncate(time.Second)) {
			t.Errorf("pod %s start %v, want %v", p.PodRef.Name, p.StartTime, sp.start.Truncate(time.Second))
		}
		for j, c := range p.Containers {
			cpu, _, mem := sp.containers[j].cpu.read(at)
			wantNodeCPU += cpu
			wantNodeMem += mem
			if *c.CPU.UsageCoreNanoSeconds != cpu || *c.Memory.WorkingSetBytes != uint64(mem) || *c.CPU.UsageNanoCores != 250e6 {
				t.Errorf("summary %s/%s: cpu %d ns at %d nanocores, memory %d; want %d, 250e6, %d", p.PodRef.Name, c.Name, *c.CPU.UsageCoreNanoSeconds, *c.CPU.UsageNanoCores, *c.Memory.WorkingSetBytes, cpu, mem)
			}
			if !c.StartTime.Time.Equal(sp.containers[j].cpu.start.Truncate(time.Second)) {
				t.Errorf("summary %s/%s start %v, want the second of %v", p.PodRef.Name, c.Name, c.StartTime, sp.containers[j].cpu.start)
			}
		}
	}
	if len(sum.Pods) != 3 {
		t.Fatalf("summary has %d pods, want 3", len(sum.Pods))
	}
	if *sum.Node.CPU.UsageCoreNanoSeconds != wantNodeCPU || *sum.Node.Memory.WorkingSetBytes != uint64(wantNodeMem) {
		t.Errorf("summary node cpu %d memory %d, want %d %d", *sum.Node.CPU.UsageCoreNanoSeconds, *sum.Node.Memory.WorkingSetBytes, wantNodeCPU, wantNodeMem)
	}
	if got, want := *sum.Node.Memory.AvailableBytes, uint64(n.shape.Memory-wantNodeMem); got != want {
		t.Errorf("summary node availableBytes %d, want capacity less working set %d", got, want)
	}

	// /metrics/resource: the same values, millisecond sample times,
	// start times to the nanosecond as float64 seconds.
	wantMS := at.UnixMilli()
	one := func(name string, labels map[string]string) *dto.Metric {
		t.Helper()
		mf := mfs[name]
		if mf == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m
		}
		t.Fatalf("no %s%v", name, labels)
		return nil
	}
	nodeMem := one("node_memory_working_set_bytes", nil)
	if nodeMem.GetGauge().GetValue() != float64(wantNodeMem) || nodeMem.GetTimestampMs() != wantMS {
		t.Errorf("node_memory_working_set_bytes %v @%d, want %d @%d", nodeMem.GetGauge().GetValue(), nodeMem.GetTimestampMs(), wantNodeMem, wantMS)
	}
	if got := one("node_cpu_usage_seconds_total", nil).GetCounter().GetValue(); got != float64(wantNodeCPU)/1e9 {
		t.Errorf("node_cpu_usage_seconds_total %v, want %v", got, float64(wantNodeCPU)/1e9)
	}
	for _, sp := range n.pods {
		for _, c := range sp.containers {
			l := map[string]string{"namespace": "ns", "pod": sp.name, "container": c.name}
			cpu, _, mem := c.cpu.read(at)
			if m := one("container_cpu_usage_seconds_total", l); m.GetCounter().GetValue() != float64(cpu)/1e9 || m.GetTimestampMs() != wantMS {
				t.Errorf("%v cpu %v @%d, want %v @%d", l, m.GetCounter().GetValue(), m.GetTimestampMs(), float64(cpu)/1e9, wantMS)
			}
			if m := one("container_memory_working_set_bytes", l); m.GetGauge().GetValue() != float64(mem) {
				t.Errorf("%v memory %v, want %d", l, m.GetGauge().GetValue(), mem)
			}
			m := one("container_start_time_seconds", l)
			if m.TimestampMs != nil {
				t.Errorf("%v start time has a timestamp", l)
			}
			if got, want := m.GetGauge().GetValue(), float64(c.cpu.start.UnixNano())/1e9; got != want || got == math.Trunc(got) {
				t.Errorf("%v start %v, want %v, sub-second", l, got, want)
			}
		}
	}
	if m := one("container_memory_working_set_bytes", map[string]string{"pod": "p00", "container": "c0"}); m.GetGauge().GetValue() != 18<<30 {
		t.Errorf("the 18 GiB container reports %v", m.GetGauge().GetValue())
	}
	// A 1.37 kubelet hides scrape_error, deprecated in 1.29.
	if mfs["scrape_error"] != nil || mfs["resource_scrape_error"] == nil {
		t.Errorf("scrape_error shown or resource_scrape_error missing: %v", keys(mfs))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestResourceExponentForm checks that large values travel as the
// kubelet's text encoder prints them (4.294967296e+10), which a decoder
// must read.
func TestResourceExponentForm(t *testing.T) {
	f, n := testNode(t, 2, 1, 40<<30)
	body := string(get(t, f, n, "/metrics/resource"))
	line := ""
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, `container_memory_working_set_bytes{container="c0"`) {
			line = l
		}
	}
	if !strings.Contains(line, " 4.294967296e+10 ") {
		t.Errorf("40 GiB container line %q, want the exponent form", line)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// TestSampleGrid checks that every node samples on its own sub-second
// phase, whole intervals apart, so summary rates stay exact.
func TestSampleGrid(t *testing.T) {
	f, err := New(Config{Nodes: 50, Prefix: "g"})
	if err != nil {
		t.Fatal(err)
	}
	phases := map[time.Duration]bool{}
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, n := range f.nodes {
		a := n.sampleTime(base.Add(1500 * time.Millisecond))
		b := n.sampleTime(base.Add(11500 * time.Millisecond))
		if d := b.Sub(a); d != 10*time.Second {
			t.Errorf("%s: samples %v apart, want 10s", n.name, d)
		}
		if a.Nanosecond() != b.Nanosecond() || a.Nanosecond() == 0 {
			t.Errorf("%s: samples at %v and %v: not one sub-second phase", n.name, a, b)
		}
		phases[time.Duration(a.Nanosecond())] = true
	}
	if len(phases) < 45 {
		t.Errorf("50 nodes sample at %d distinct phases", len(phases))
	}
}
