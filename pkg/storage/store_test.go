package storage

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
)

// The getters the API package consumes; the Store must satisfy them.
type (
	nodeGetter interface {
		GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error)
	}
	podGetter interface {
		GetPodUsage(pods ...*podmeta.Pod) []points.PodUsage
	}
)

var (
	_ nodeGetter = (*Store)(nil)
	_ podGetter  = (*Store)(nil)
)

// served is a compact view of what the getters return.
type served struct {
	MilliCPU int64
	Memory   int64
	Window   time.Duration
}

func nodeObj(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"n": name}}}
}

func podObj(ns, name string) *podmeta.Pod {
	return &podmeta.Pod{Namespace: ns, Name: name, Labels: map[string]string{"p": name}}
}

// ctr is a container's sample: CPU seconds, memory bytes (noMem: not
// reported) and start time in seconds.
type ctr struct {
	name    string
	cpuSecs float64
	mem     uint64
	start   int64
}

const noMem = math.MaxUint64

func batch(node string, t int64, pods map[string][]ctr) *points.Batch {
	b := &points.Batch{Node: node, NodePoint: pt(t, 1, float64(t)*2, 1<<30)}
	// Map order is random; keep pods sorted for stable batches.
	for _, key := range sortedKeys(pods) {
		var ns, name string
		fmt.Sscanf(key, "%s %s", &ns, &name)
		p := points.Pod{Namespace: ns, Name: name}
		for _, c := range pods[key] {
			point := pt(t, c.start, c.cpuSecs, c.mem)
			if c.mem == noMem {
				point.Has &^= points.HasMemory
			}
			p.Containers = append(p.Containers, points.Container{Name: c.name, Point: point})
		}
		b.Pods = append(b.Pods, p)
	}
	return b
}

func sortedKeys(m map[string][]ctr) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func podsServed(t *testing.T, s *Store, pods ...*podmeta.Pod) map[string]map[string]served {
	t.Helper()
	out := map[string]map[string]served{}
	last := -1
	for _, u := range s.GetPodUsage(pods...) {
		if u.Index <= last {
			t.Errorf("pod index %d after %d: results out of input order", u.Index, last)
		}
		last = u.Index
		cs := map[string]served{}
		for _, c := range u.Containers {
			cs[c.Name] = served{MilliCPU: int64(c.NanoCores / 1e6), Memory: int64(c.Memory), Window: time.Duration(u.Window)}
		}
		p := pods[u.Index]
		out[p.Namespace+"/"+p.Name] = cs
	}
	return out
}

func TestStorePods(t *testing.T) {
	web, api, job := podObj("shop", "web"), podObj("shop", "api"), podObj("batch", "job")
	tests := []struct {
		name    string
		drop    bool
		batches []*points.Batch
		want    map[string]map[string]served
	}{
		{
			name: "two points give rates for every container",
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 100, 5}, {"sidecar", 1, 20, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 15, 110, 5}, {"sidecar", 1.1, 20, 5}}}),
			},
			want: map[string]map[string]served{"shop/web": {"app": {500, 110, 10 * time.Second}, "sidecar": {10, 20, 10 * time.Second}}},
		},
		{
			name: "a container without memory hides its pod",
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 100, 5}, {"sidecar", 1, noMem, 5}}, "shop api": {{"api", 1, 1, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 15, 110, 5}, {"sidecar", 2, noMem, 5}}, "shop api": {{"api", 2, 1, 5}}}),
			},
			want: map[string]map[string]served{"shop/api": {"api": {100, 1, 10 * time.Second}}},
		},
		{
			name: "an idle sidecar is served by default",
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 100, 5}, {"idle", 0, 0, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 15, 100, 5}, {"idle", 0, 0, 5}}}),
			},
			want: map[string]map[string]served{"shop/web": {"app": {500, 100, 10 * time.Second}, "idle": {0, 0, 10 * time.Second}}},
		},
		{
			name: "drop, as upstream: a container that has used no CPU at all hides its pod",
			drop: true,
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 100, 5}, {"idle", 0, 5, 5}}, "shop api": {{"api", 1, 1, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 15, 100, 5}, {"idle", 0, 5, 5}}, "shop api": {{"api", 2, 1, 5}}}),
			},
			want: map[string]map[string]served{"shop/api": {"api": {100, 1, 10 * time.Second}}},
		},
		{
			name: "drop, as upstream: an idle sidecar that has used CPU is served",
			drop: true,
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 18 << 30, 5}, {"idle", 0.25, 8 << 20, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 15, 18 << 30, 5}, {"idle", 0.25, 8 << 20, 5}}}),
			},
			want: map[string]map[string]served{"shop/web": {"app": {500, 18 << 30, 10 * time.Second}, "idle": {0, 8 << 20, 10 * time.Second}}},
		},
		{
			name: "drop, as upstream: a container without working set hides its pod",
			drop: true,
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 18 << 30, 5}, {"pause", 0.5, 0, 5}}, "shop api": {{"api", 1, 1 << 30, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 15, 18 << 30, 5}, {"pause", 0.6, 0, 5}}, "shop api": {{"api", 2, 1 << 30, 5}}}),
			},
			want: map[string]map[string]served{"shop/api": {"api": {100, 1 << 30, 10 * time.Second}}},
		},
		{
			name: "a pod gone from its node's batch is dropped",
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 1, 5}}, "shop api": {{"api", 1, 1, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 11, 1, 5}}, "shop api": {{"api", 2, 1, 5}}}),
				batch("n1", 120, map[string][]ctr{"shop api": {{"api", 3, 1, 5}}}),
			},
			want: map[string]map[string]served{"shop/api": {"api": {100, 1, 10 * time.Second}}},
		},
		{
			name: "a pod moved to another node starts over there",
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"batch job": {{"run", 10, 1, 5}}}),
				batch("n1", 110, map[string][]ctr{"batch job": {{"run", 20, 1, 5}}}),
				batch("n1", 115, map[string][]ctr{}),
				batch("n2", 115, map[string][]ctr{"batch job": {{"run", 1, 2, 112}}}),
				// n1 still does not list it: that must not remove it from n2.
				batch("n1", 120, map[string][]ctr{}),
				batch("n2", 125, map[string][]ctr{"batch job": {{"run", 3, 2, 112}}}),
			},
			want: map[string]map[string]served{"batch/job": {"run": {200, 2, 10 * time.Second}}},
		},
		{
			name: "a container that left the pod is forgotten",
			batches: []*points.Batch{
				batch("n1", 100, map[string][]ctr{"shop web": {{"app", 10, 1, 5}, {"init", 1, 1, 5}}}),
				batch("n1", 110, map[string][]ctr{"shop web": {{"app", 12, 1, 5}}}),
			},
			want: map[string]map[string]served{"shop/web": {"app": {200, 1, 10 * time.Second}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(Options{DropZeroUsagePods: tt.drop, Clock: clocktesting.NewFakeClock(time.Unix(1000, 0))})
			for _, b := range tt.batches {
				s.Store(b)
				checkLists(t, s)
			}
			got := podsServed(t, s, web, api, job)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("served pods (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodTimestampIsItsEarliestContainer(t *testing.T) {
	s := NewStore(Options{})
	b1 := batch("n1", 100, map[string][]ctr{"shop web": {{"a", 1, 1, 5}, {"b", 1, 1, 5}}})
	b2 := batch("n1", 110, map[string][]ctr{"shop web": {{"a", 2, 1, 5}, {"b", 2, 1, 5}}})
	b2.Pods[0].Containers[1].Timestamp = 108 * sec // b sampled earlier
	s.Store(b1)
	s.Store(b2)
	us := s.GetPodUsage(podObj("shop", "other"), podObj("shop", "web"))
	if len(us) != 1 {
		t.Fatalf("got %d pods, want 1", len(us))
	}
	if us[0].Index != 1 {
		t.Errorf("index %d, want 1 (the second pod asked)", us[0].Index)
	}
	if got := time.Unix(0, us[0].Timestamp); !got.Equal(time.Unix(108, 0)) {
		t.Errorf("timestamp %v, want the earliest container's 108s", got)
	}
	if got := time.Duration(us[0].Window); got != 8*time.Second {
		t.Errorf("window %v, want the earliest container's 8s", got)
	}
	if len(us[0].Containers) != 2 || us[0].Containers[0].Name != "a" || us[0].Containers[1].Name != "b" {
		t.Errorf("containers %+v, want a and b in kubelet order", us[0].Containers)
	}
}

func TestStoreNodesPruneForgetReady(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	s := NewStore(Options{StaleAfter: 45 * time.Second, Clock: clk})
	if got := s.Servable(); got.Nodes || got.Pods {
		t.Fatalf("an empty store serves %+v", got)
	}
	pods := map[string][]ctr{"shop web": {{"app", 1, 1, 5}}}
	s.Store(batch("n1", 100, pods))
	s.Store(batch("n2", 100, map[string][]ctr{}))
	if got := s.Servable(); got.Nodes || got.Pods || !got.PodsReported {
		t.Fatalf("with one point per series: %+v, want pods reported and nothing servable", got)
	}
	clk.Step(15 * time.Second)
	s.Store(batch("n1", 115, pods))
	s.Store(batch("n2", 115, map[string][]ctr{}))
	if got := s.Servable(); !got.Nodes || !got.Pods {
		t.Fatalf("with two points: %+v, want nodes and pods servable", got)
	}
	ms, err := s.GetNodeMetrics(nodeObj("n1"), nodeObj("unknown"), nodeObj("n2"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
		if got := m.Usage.Cpu().MilliValue(); got != 2000 {
			t.Errorf("node %s CPU %dm, want 2000m", m.Name, got)
		}
		if m.Labels["n"] != m.Name {
			t.Errorf("node %s labels not copied: %v", m.Name, m.Labels)
		}
	}
	if diff := cmp.Diff([]string{"n1", "n2"}, names); diff != "" {
		t.Errorf("nodes served (-want +got):\n%s", diff)
	}
	if n, c := s.Points(); n != 4 || c != 2 {
		t.Errorf("Points() = %d nodes, %d containers; want 4, 2", n, c)
	}

	// n1 keeps failing: its last good metrics stay until StaleAfter.
	clk.Step(30 * time.Second)
	s.Store(batch("n2", 145, map[string][]ctr{}))
	s.Prune()
	if got := len(podsServed(t, s, podObj("shop", "web"))); got != 1 {
		t.Errorf("pod of a node that failed once is hidden")
	}
	clk.Step(30 * time.Second)
	s.Prune()
	if got := len(podsServed(t, s, podObj("shop", "web"))); got != 0 {
		t.Errorf("pod of a node stale for 60s still served")
	}
	if ms, _ := s.GetNodeMetrics(nodeObj("n1")); len(ms) != 0 {
		t.Errorf("stale node still served")
	}
	s.Forget("n2")
	if n, c := s.Points(); n != 0 || c != 0 {
		t.Errorf("after Prune and Forget: %d node and %d container points left", n, c)
	}
}

func TestStoreConcurrentUse(t *testing.T) {
	s := NewStore(Options{StaleAfter: time.Hour})
	var wg sync.WaitGroup
	for n := range 8 {
		wg.Go(func() {
			node := fmt.Sprintf("n%d", n)
			for i := range int64(50) {
				s.Store(batch(node, 100+i, map[string][]ctr{fmt.Sprintf("ns p%d", n): {{"c", float64(i), 1, 5}}}))
			}
		})
		wg.Go(func() {
			for range 50 {
				_ = s.GetPodUsage(podObj("ns", fmt.Sprintf("p%d", n)))
				_, _ = s.GetNodeMetrics(nodeObj(fmt.Sprintf("n%d", n)))
				s.Prune()
				_ = s.Servable()
			}
		})
	}
	wg.Wait()
	if got := len(podsServed(t, s, podObj("ns", "p3"))); got != 1 {
		t.Errorf("pod p3 not served after concurrent ingest")
	}
}

// TestStoreKeepsNothingOfABatch: the scraper hands a stored batch back to
// the kubelet client, which fills it with the next scrape. Overwriting
// every slice and byte of names a batch held must not change what the
// store serves.
func TestStoreKeepsNothingOfABatch(t *testing.T) {
	web := podObj("shop", "web")
	want := map[string]map[string]served{"shop/web": {"app": {500, 110, 10 * time.Second}}}
	s := NewStore(Options{})
	for _, tm := range []int64{100, 110} {
		cpu := map[int64]float64{100: 10, 110: 15}[tm]
		mem := map[int64]uint64{100: 100, 110: 110}[tm]
		// Names in one buffer, as a decoder's arena, that is then reused.
		arena := []byte("shopwebapp")
		b := &points.Batch{Node: "n1", NodePoint: pt(tm, 1, float64(tm)*2, 1<<30), Pods: []points.Pod{{
			Namespace: unsafe.String(&arena[0], 4), Name: unsafe.String(&arena[4], 3),
			Containers: []points.Container{{Name: unsafe.String(&arena[7], 3), Point: pt(tm, 5, cpu, mem)}},
		}}}
		s.Store(b)
		// The batch is reused: slices and names overwritten.
		b.Pods[0].Containers[0] = points.Container{Name: "zzz", Point: pt(999, 1, 1, 1)}
		b.Pods[0] = points.Pod{Namespace: "x", Name: "y"}
		copy(arena, "XXXXXXXXXX")
	}
	if diff := cmp.Diff(want, podsServed(t, s, web)); diff != "" {
		t.Errorf("served after the batches were reused (-want +got):\n%s", diff)
	}
}

// TestStoreServesAcrossFormatSwitch: a node whose scrapes alternate between
// /metrics/resource (millisecond sample times, sub-second start times) and
// /stats/summary (whole seconds for both) keeps its pods served at every
// step, with the rate they really have; so do kwok's pods, whose start time
// is the seconds since the pod started.
func TestStoreServesAcrossFormatSwitch(t *testing.T) {
	const gib = 1 << 30
	type sample struct {
		summary bool // whole-second times, as /stats/summary
		at      float64
	}
	// A node of 48 cores using 30 of them, a JVM at 2.5 cores with 18 GiB
	// and a sidecar at 20 millicores with 64 MiB, all up for two hours.
	nodeStart, appStart, sideStart := at(-86400.25), at(-7200.734512), at(-7199.912345)
	resourceThenSummary := []sample{{false, 0.25}, {false, 15.312}, {true, 30.9}, {true, 45.7}, {false, 60.401}, {false, 75.2}}
	fill := func(smp sample) *points.Batch {
		ts := at(smp.at)
		point := func(start int64, cores float64, mem uint64) points.Point {
			p := points.Point{Timestamp: ts / 1e6 * 1e6, StartTime: start, CPU: cpuAt(cores, start, ts), Memory: mem, Has: points.HasCPU | points.HasMemory}
			if smp.summary {
				p.Timestamp, p.StartTime = ts/sec*sec, start/sec*sec
			}
			return p
		}
		return &points.Batch{Node: "big-1", NodePoint: point(nodeStart, 30, 200*gib), Pods: []points.Pod{{
			Namespace: "shop", Name: "web",
			Containers: []points.Container{{Name: "app", Point: point(appStart, 2.5, 18*gib)}, {Name: "sidecar", Point: point(sideStart, 0.02, 64<<20)}},
		}}}
	}
	s := NewStore(Options{})
	for i, smp := range resourceThenSummary {
		s.Store(fill(smp))
		if i == 0 {
			continue
		}
		got := podsServed(t, s, podObj("shop", "web"))["shop/web"]
		if got == nil {
			t.Fatalf("after sample %d (summary %v at %vs) the pod is not served", i, smp.summary, smp.at)
		}
		// Whole-second sample times shift a window by under a second in
		// 15: the rate is within 10% of the truth.
		if app := got["app"].MilliCPU; app < 2250 || app > 2750 {
			t.Errorf("after sample %d: app at %dm, want 2500m within 10%%", i, app)
		}
		if side := got["sidecar"].Memory; side != 64<<20 {
			t.Errorf("after sample %d: sidecar memory %d, want %d", i, side, 64<<20)
		}
		if ms, _ := s.GetNodeMetrics(nodeObj("big-1")); len(ms) != 1 {
			t.Errorf("after sample %d the node is not served", i)
		}
	}

	// kwok v0.8.0: start time = seconds since the pod started; no sample
	// times, so the request time stands in.
	kwok := NewStore(Options{})
	for i, since := range []float64{120.5, 135.503, 150.498, 165.51} {
		ts := at(since - 120.5)
		kwok.Store(&points.Batch{Node: "kwok-node-0", NodePoint: pt(ts/sec, 1, float64(ts/sec), gib), Pods: []points.Pod{{
			Namespace: "default", Name: "fake-pod",
			Containers: []points.Container{{Name: "app", Point: points.Point{Timestamp: ts, StartTime: int64(since * 1e9), CPU: uint64(since * 0.25e9), Memory: 512 << 20, Has: points.HasCPU | points.HasMemory}}},
		}}})
		got := podsServed(t, kwok, podObj("default", "fake-pod"))["default/fake-pod"]
		if i > 0 && got["app"].MilliCPU != 250 {
			t.Errorf("kwok pod after scrape %d: %+v, want app at 250m", i, got)
		}
	}
}

// TestStoreKubeletClocks: kubelet clocks that are off, step, or send one
// garbage time. A clock consistently ahead or behind is served every cycle
// with its true rate; a stepped clock is followed within two cycles; one
// garbage time changes nothing. Nothing is ever served with a timestamp
// after the store's clock, and no rate spans a jump.
func TestStoreKubeletClocks(t *testing.T) {
	const (
		gib    = 1 << 30
		cycles = 12
		jumpAt = 4 // the cycle at which a clock steps or lies
	)
	year2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	tests := []struct {
		name string
		// skew is the kubelet clock's offset from the store's at cycle i;
		// garbage, if set, is the sample time it sends instead.
		skew    func(i int) time.Duration
		garbage func(i int) int64
		// notFresh are the cycles (from 1) at which the latest sample may
		// be missing from what is served (stale or not served at all).
		notFresh []int
	}{
		{name: "in sync", skew: func(int) time.Duration { return 0 }},
		{name: "5 minutes ahead", skew: func(int) time.Duration { return 5 * time.Minute }},
		{name: "5 minutes behind", skew: func(int) time.Duration { return -5 * time.Minute }},
		{
			name:     "stepped back 5 minutes",
			skew:     func(i int) time.Duration { return map[bool]time.Duration{true: -5 * time.Minute}[i >= jumpAt] },
			notFresh: []int{jumpAt, jumpAt + 1},
		},
		{
			name:     "stepped forward 5 minutes",
			skew:     func(i int) time.Duration { return map[bool]time.Duration{true: 5 * time.Minute}[i >= jumpAt] },
			notFresh: []int{jumpAt, jumpAt + 1},
		},
		{
			name:     "one sample from the year 2100",
			skew:     func(int) time.Duration { return 0 },
			garbage:  func(i int) int64 { return map[bool]int64{true: year2100}[i == jumpAt] },
			notFresh: []int{jumpAt},
		},
		{
			name:     "one sample from 1970",
			skew:     func(int) time.Duration { return 0 },
			garbage:  func(i int) int64 { return map[bool]int64{true: 42 * sec}[i == jumpAt] },
			notFresh: []int{jumpAt},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Unix(0, epoch))
			s := NewStore(Options{Clock: clk})
			start := epoch - 86400*sec
			for i := range cycles {
				clk.Step(15 * time.Second)
				now := clk.Now().UnixNano()
				// The kubelet's sample is 350 ms old by its own clock; the
				// node runs 24 cores busy, its JVM 2.5 cores with 18 GiB.
				real := now - 350*int64(time.Millisecond)
				ts := real + int64(tt.skew(i))
				if tt.garbage != nil && tt.garbage(i) != 0 {
					ts = tt.garbage(i)
				}
				point := func(cores float64, mem uint64) points.Point {
					return points.Point{Timestamp: ts, StartTime: start + int64(tt.skew(i)), CPU: cpuAt(cores, start, real), Memory: mem, Has: points.HasCPU | points.HasMemory}
				}
				s.Store(&points.Batch{Node: "big-1", NodePoint: point(24, 180*gib), Pods: []points.Pod{{
					Namespace: "shop", Name: "web", Containers: []points.Container{{Name: "app", Point: point(2.5, 18*gib)}},
				}}})
				if i == 0 {
					continue
				}
				fresh := !slices.Contains(tt.notFresh, i)
				wantTS := min(ts, now)

				ms, _ := s.GetNodeMetrics(nodeObj("big-1"))
				if len(ms) == 1 {
					got := ms[0].Timestamp.UnixNano()
					if got > now {
						t.Errorf("cycle %d: node served at %v, after the store's clock %v", i, ms[0].Timestamp.UTC(), clk.Now().UTC())
					}
					if milli := ms[0].Usage.Cpu().MilliValue(); milli < 23760 || milli > 24240 {
						t.Errorf("cycle %d: node CPU %dm, want 24000m within 1%% (window %v)", i, milli, ms[0].Window.Duration)
					}
					if fresh && got != wantTS {
						t.Errorf("cycle %d: node served at %v, want its latest sample's %v", i, ms[0].Timestamp.UTC(), time.Unix(0, wantTS).UTC())
					}
				} else if fresh {
					t.Errorf("cycle %d: node not served", i)
				}

				us := s.GetPodUsage(podObj("shop", "web"))
				if len(us) == 1 {
					if us[0].Timestamp > now {
						t.Errorf("cycle %d: pod served at %v, after the store's clock", i, time.Unix(0, us[0].Timestamp).UTC())
					}
					if milli := us[0].Containers[0].NanoCores / 1e6; milli < 2475 || milli > 2525 {
						t.Errorf("cycle %d: pod CPU %dm, want 2500m within 1%%", i, milli)
					}
					if fresh && us[0].Timestamp != wantTS {
						t.Errorf("cycle %d: pod served at %v, want its latest sample's %v", i, time.Unix(0, us[0].Timestamp).UTC(), time.Unix(0, wantTS).UTC())
					}
				} else if fresh {
					t.Errorf("cycle %d: pod not served", i)
				}
			}
		})
	}
}

// checkLists fails unless every pod entry is in the list of the node that
// holds it, exactly once, and every list holds only that node's entries:
// Forget and Prune find a pod only through its node's list.
func checkLists(t *testing.T, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	listed := map[*podEntry]int{}
	for name, n := range s.nodes {
		for _, p := range n.pods {
			listed[p]++
			if p.node != name || s.pods[p.key] != p {
				t.Errorf("node %s lists pod %s/%s held by %q (in the pods map: %v)", name, p.key.namespace, p.key.name, p.node, s.pods[p.key] == p)
			}
		}
	}
	for key, p := range s.pods {
		if listed[p] != 1 {
			t.Errorf("pod %s/%s of node %q is in %d node lists, want 1", key.namespace, key.name, p.node, listed[p])
		}
	}
}

// TestStoreMovedPodCountersEqual: a pod reported by a second node whose
// batch counter happens to equal the first node's must not fall out of
// every node's list (where Forget could no longer find it).
func TestStoreMovedPodCountersEqual(t *testing.T) {
	s := NewStore(Options{})
	job := map[string][]ctr{"batch job": {{"run", 10, 4 << 30, 5}}}
	s.Store(batch("n1", 100, job)) // n1's first batch
	s.Store(batch("n2", 100, job)) // n2's first batch: the same count
	checkLists(t, s)
	s.Forget("n1")
	s.Forget("n2")
	if len(s.pods) != 0 {
		t.Errorf("%d pods left after both nodes were forgotten", len(s.pods))
	}
}

// TestStorePodOwnership: a pod belongs to the node that holds it while that
// node keeps reporting it; another node can neither take it over, hide it
// nor fake it, and a pod that really moved still moves.
func TestStorePodOwnership(t *testing.T) {
	job := func(cpuSecs float64) map[string][]ctr {
		return map[string][]ctr{"batch job": {{"run", cpuSecs, 12 << 30, 5}}}
	}
	none := map[string][]ctr{}
	// step stores a batch, or binds the pod to a node, or moves the clock
	// on by advance and prunes, or forgets a node.
	type step struct {
		b       *points.Batch
		bind    string
		advance time.Duration
		forget  string
	}
	tests := []struct {
		name         string
		bound        bool // the store is told where pods are bound
		steps        []step
		want         map[string]map[string]served
		wantDisputed int
	}{
		{
			name: "two nodes report one pod: the first keeps it and it is served",
			steps: []step{
				{b: batch("n1", 100, job(10))}, {b: batch("n2", 101, job(500))},
				{b: batch("n1", 110, job(20))}, {b: batch("n2", 111, job(600))},
				{b: batch("n1", 120, job(30))}, {b: batch("n2", 121, job(700))},
			},
			want:         map[string]map[string]served{"batch/job": {"run": {1000, 12 << 30, 10 * time.Second}}},
			wantDisputed: 1,
		},
		{
			name: "another node reporting a pod and then dropping it hides nothing",
			steps: []step{
				{b: batch("n1", 100, job(10))}, {b: batch("n1", 110, job(20))},
				{b: batch("n2", 111, job(5))}, {b: batch("n2", 121, none)},
			},
			want: map[string]map[string]served{"batch/job": {"run": {1000, 12 << 30, 10 * time.Second}}},
		},
		{
			name: "a pod that moved: once its old node no longer reports it, the new node's claim wins",
			steps: []step{
				{b: batch("n1", 100, job(10))}, {b: batch("n1", 110, job(20))},
				{b: batch("n2", 111, job(1))}, {b: batch("n1", 120, none)},
				{b: batch("n2", 121, job(2))}, {b: batch("n2", 131, job(4))},
			},
			want: map[string]map[string]served{"batch/job": {"run": {200, 12 << 30, 10 * time.Second}}},
		},
		{
			name: "the old node died: the pod moves when it is pruned",
			steps: []step{
				{b: batch("n1", 100, job(10))}, {b: batch("n1", 110, job(20))},
				{b: batch("n2", 111, job(1))}, {b: batch("n2", 121, job(2))},
				{advance: 30 * time.Second}, {b: batch("n2", 141, job(4))},
				{advance: 20 * time.Second}, // n1 is stale now, n2 is not
				{b: batch("n2", 161, job(6))}, {b: batch("n2", 171, job(8))},
			},
			want: map[string]map[string]served{"batch/job": {"run": {200, 12 << 30, 10 * time.Second}}},
		},
		{
			name: "the old node was deleted: the pod moves at once",
			steps: []step{
				{b: batch("n1", 100, job(10))}, {b: batch("n1", 110, job(20))},
				{b: batch("n2", 111, job(1))}, {forget: "n1"},
				{b: batch("n2", 121, job(2))}, {b: batch("n2", 131, job(4))},
			},
			want: map[string]map[string]served{"batch/job": {"run": {200, 12 << 30, 10 * time.Second}}},
		},
		{
			name:  "bound: a node the pod is not bound to cannot report it first",
			bound: true,
			steps: []step{
				{bind: "n1"},
				{b: batch("n2", 100, job(500))}, {b: batch("n1", 101, job(10))},
				{b: batch("n2", 110, job(600))}, {b: batch("n1", 111, job(20))},
			},
			want:         map[string]map[string]served{"batch/job": {"run": {1000, 12 << 30, 10 * time.Second}}},
			wantDisputed: 1,
		},
		{
			name:  "bound: the bound node takes the pod from the node that held it",
			bound: true,
			steps: []step{
				{b: batch("n2", 100, job(500))}, {b: batch("n2", 110, job(600))},
				{bind: "n1"},
				{b: batch("n1", 111, job(10))}, {b: batch("n2", 120, job(700))}, {b: batch("n1", 121, job(20))},
			},
			want:         map[string]map[string]served{"batch/job": {"run": {1000, 12 << 30, 10 * time.Second}}},
			wantDisputed: 1,
		},
		{
			name: "unbound: the first node to report a pod holds it (not checked without binding)",
			steps: []step{
				{b: batch("n2", 100, job(500))}, {b: batch("n1", 101, job(10))},
				{b: batch("n2", 110, job(600))}, {b: batch("n1", 111, job(20))},
			},
			want:         map[string]map[string]served{"batch/job": {"run": {10000, 12 << 30, 10 * time.Second}}},
			wantDisputed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
			boundTo := map[podKey]string{}
			opts := Options{StaleAfter: 45 * time.Second, Clock: clk}
			if tt.bound {
				opts.BoundNode = func(namespace, name string) (string, bool) {
					node, ok := boundTo[podKey{namespace, name}]
					return node, ok
				}
			}
			s := NewStore(opts)
			for _, st := range tt.steps {
				switch {
				case st.b != nil:
					s.Store(st.b)
				case st.bind != "":
					boundTo[podKey{"batch", "job"}] = st.bind
				case st.advance != 0:
					clk.Step(st.advance)
					s.Prune()
				case st.forget != "":
					s.Forget(st.forget)
				}
				checkLists(t, s)
			}
			if diff := cmp.Diff(tt.want, podsServed(t, s, podObj("batch", "job"))); diff != "" {
				t.Errorf("served pods (-want +got):\n%s", diff)
			}
			if got := s.Disputed(); got != tt.wantDisputed {
				t.Errorf("Disputed() = %d, want %d", got, tt.wantDisputed)
			}
		})
	}
}

// TestStoreDisputeLoggedOnChange: a node claiming another node's pod is
// logged when its claims start and when they end, not every cycle.
func TestStoreDisputeLoggedOnChange(t *testing.T) {
	s := NewStore(Options{})
	job := map[string][]ctr{"batch job": {{"run", 10, 12 << 30, 5}}}
	s.Store(batch("n1", 100, job))
	for i, tt := range []struct {
		pods        map[string][]ctr
		wantChanged bool
	}{
		{job, true}, {job, false}, {job, false}, {map[string][]ctr{}, true}, {map[string][]ctr{}, false}, {job, true},
	} {
		s.mu.Lock()
		d := s.store(batch("n2", 101+int64(i), tt.pods), 0)
		s.mu.Unlock()
		if d.changed() != tt.wantChanged {
			t.Errorf("n2's batch %d: dispute %+v changed = %v, want %v", i, d, d.changed(), tt.wantChanged)
		}
	}
}

// TestStoreServesSwapAndEphemeralStorage: a node's and a container's swap
// and ephemeral storage reach the getters as "swap" and
// "ephemeral-storage" quantities where the kubelet reported them, and are
// absent (not zero) where it did not.
func TestStoreServesSwapAndEphemeralStorage(t *testing.T) {
	s := NewStore(Options{})
	for _, ts := range []int64{100, 115} {
		for _, node := range []string{"swapful", "swapless"} {
			b := batch(node, ts, map[string][]ctr{"ns " + node: {{name: "a", cpuSecs: float64(ts), mem: 10 << 20}, {name: "b", cpuSecs: float64(ts), mem: 20 << 20}}})
			if node == "swapful" {
				b.NodePoint.Has |= points.HasSwap | points.HasEphemeralStorage
				b.NodePoint.Swap, b.NodePoint.EphemeralStorage = 3<<30, 40<<30
				c := &b.Pods[0].Containers[0].Point
				c.Has |= points.HasSwap | points.HasEphemeralStorage
				c.Swap, c.EphemeralStorage = 256<<20, 1536
				b.Pods[0].Containers[1].Has |= points.HasSwap // reported, zero
			}
			s.Store(b)
		}
	}
	nodes, err := s.GetNodeMetrics(nodeObj("swapful"), nodeObj("swapless"))
	if err != nil || len(nodes) != 2 {
		t.Fatalf("GetNodeMetrics = %d nodes, %v; want 2", len(nodes), err)
	}
	keys := func(l corev1.ResourceList) map[corev1.ResourceName]string {
		out := map[corev1.ResourceName]string{}
		for k, q := range l {
			out[k] = q.String()
		}
		return out
	}
	wantNodes := []map[corev1.ResourceName]string{
		{"cpu": "2", "memory": "1Gi", "swap": "3Gi", "ephemeral-storage": "40Gi"},
		{"cpu": "2", "memory": "1Gi"},
	}
	for i, n := range nodes {
		if diff := cmp.Diff(wantNodes[i], keys(n.Usage)); diff != "" {
			t.Errorf("node %s usage (-want +got):\n%s", n.Name, diff)
		}
	}
	pods := s.GetPodUsage(podObj("ns", "swapful"), podObj("ns", "swapless"))
	if len(pods) != 2 {
		t.Fatalf("GetPodUsage = %d pods, want 2", len(pods))
	}
	var got [][]map[corev1.ResourceName]string
	for _, p := range pods {
		var cs []map[corev1.ResourceName]string
		for _, c := range p.Containers {
			cs = append(cs, keys(ResourceList(c.Usage)))
		}
		got = append(got, cs)
	}
	want := [][]map[corev1.ResourceName]string{
		{{"cpu": "1", "memory": "10Mi", "swap": "256Mi", "ephemeral-storage": "1536"}, {"cpu": "1", "memory": "20Mi", "swap": "0"}},
		{{"cpu": "1", "memory": "10Mi"}, {"cpu": "1", "memory": "20Mi"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pod usage (-want +got):\n%s", diff)
	}
}
