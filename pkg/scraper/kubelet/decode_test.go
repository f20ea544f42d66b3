package kubelet

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// batchContent compares batches by what they hold, not by the memory a
// decoder keeps in them for reuse.
var batchContent = cmpopts.IgnoreUnexported(points.Batch{})

// requestTime stands in for the time of the request in decoder tests.
var requestTime = time.Date(2026, 11, 24, 10, 15, 40, 0, time.UTC)

func decodeFile(t *testing.T, path string) (*points.Batch, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".json") {
		return DecodeSummary(f, "worker-1", requestTime)
	}
	return DecodeResource(f, "worker-1", requestTime)
}

func TestDecodersGolden(t *testing.T) {
	for _, in := range []string{
		"summary-pods.json",
		"summary-no-pods.json",
		"resource-pods.txt",
		"resource-no-pods.txt",
		"resource-escaped-no-timestamps.txt",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := decodeFile(t, filepath.Join("testdata", in))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(in, filepath.Ext(in))+".golden.json")
			if *update {
				b, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update once to create it)", err)
			}
			var want points.Batch
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&want, got, cmpopts.EquateEmpty(), batchContent); diff != "" {
				t.Errorf("decoded batch differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestFormatsAgree decodes the same kubelet state in both formats: every
// point must be the same, whatever the format.
func TestFormatsAgree(t *testing.T) {
	for _, pair := range [][2]string{
		{"summary-pods.json", "resource-pods.txt"},
		{"summary-no-pods.json", "resource-no-pods.txt"},
	} {
		t.Run(pair[0], func(t *testing.T) {
			s, err := decodeFile(t, filepath.Join("testdata", pair[0]))
			if err != nil {
				t.Fatal(err)
			}
			r, err := decodeFile(t, filepath.Join("testdata", pair[1]))
			if err != nil {
				t.Fatal(err)
			}
			// The resource format has no node start time. Its sample
			// times are milliseconds and its container start times
			// float64(UnixNano)/1e9, while the summary's times are
			// metav1.Times, whole seconds: compare both at seconds. Its
			// CPU seconds are float64, exact to one part in 2^52.
			s.NodePoint.StartTime = 0
			seconds := func(ns int64) int64 { return ns / int64(time.Second) * int64(time.Second) }
			each := func(b *points.Batch, f func(p *points.Point)) {
				f(&b.NodePoint)
				for i := range b.Pods {
					for j := range b.Pods[i].Containers {
						f(&b.Pods[i].Containers[j].Point)
					}
				}
			}
			each(s, func(p *points.Point) { p.Timestamp, p.StartTime = seconds(p.Timestamp), seconds(p.StartTime) })
			each(r, func(p *points.Point) { p.Timestamp, p.StartTime = seconds(p.Timestamp), seconds(p.StartTime) })
			byName := func(a, b points.Pod) bool { return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name }
			closeCPU := cmp.Comparer(func(a, b points.Point) bool {
				d := int64(a.CPU - b.CPU)
				a.CPU = b.CPU
				return a == b && uint64(max(d, -d)) <= max(a.CPU, b.CPU)>>52
			})
			if diff := cmp.Diff(s, r, cmpopts.SortSlices(byName), cmpopts.EquateEmpty(), batchContent, closeCPU); diff != "" {
				t.Errorf("summary and resource disagree (-summary +resource):\n%s", diff)
			}
		})
	}
}

func TestSummaryShapes(t *testing.T) {
	b, err := decodeFile(t, "testdata/summary-pods.json")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]points.Pod{}
	for _, p := range b.Pods {
		byName[p.Namespace+"/"+p.Name] = p
	}
	tests := []struct {
		pod        string
		containers []string
		has        []points.Has
	}{
		{"shop/web-7d9f8c6b5-x2k4p", []string{"nginx", "php-fpm"}, []points.Has{points.HasCPU | points.HasMemory | points.HasSwap, points.HasCPU | points.HasMemory}},
		{"shop/api-0", []string{"istio-proxy", "api"}, []points.Has{points.HasCPU | points.HasMemory, points.HasCPU | points.HasMemory}},
		{"db/pg-0", []string{"postgres"}, []points.Has{points.HasCPU | points.HasMemory}},
		{"shop/migrate-28871234-abcde", []string{"migrate"}, []points.Has{0}},
	}
	for _, tt := range tests {
		t.Run(tt.pod, func(t *testing.T) {
			p, ok := byName[tt.pod]
			if !ok {
				t.Fatalf("pod %s missing", tt.pod)
			}
			var names []string
			var has []points.Has
			for _, c := range p.Containers {
				names = append(names, c.Name)
				has = append(has, c.Has)
				if c.Timestamp == 0 {
					t.Errorf("container %s has no timestamp", c.Name)
				}
			}
			if diff := cmp.Diff(tt.containers, names); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.has, has); diff != "" {
				t.Errorf("present values (-want +got):\n%s", diff)
			}
		})
	}
	if got, want := b.NodePoint.CPU, uint64(10368000123456789); got != want {
		t.Errorf("node CPU = %d, want %d", got, want)
	}
	if got, want := b.NodePoint.Memory, uint64(412316860416); got != want {
		t.Errorf("node memory = %d, want %d", got, want)
	}
	if got, want := b.NodePoint.Swap, uint64(1<<30); got != want || b.NodePoint.Has&points.HasSwap == 0 {
		t.Errorf("node swap = %d (has %b), want %d", got, b.NodePoint.Has, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body string
		resource   bool
		wantErr    string
	}{
		{name: "empty summary", body: "", wantErr: "EOF"},
		{name: "truncated summary", body: `{"node":{"cpu":{"usageCoreNanoSeconds":12`, wantErr: "unexpected EOF"},
		{name: "negative counter", body: `{"node":{"cpu":{"time":"2026-11-24T10:00:00Z","usageCoreNanoSeconds":-5}}}`, wantErr: "cannot unmarshal"},
		{name: "string counter", body: `{"node":{"memory":{"workingSetBytes":"12"}}}`, wantErr: "cannot unmarshal"},
		{name: "bad time", body: `{"node":{"cpu":{"time":"yesterday","usageCoreNanoSeconds":5}}}`, wantErr: "cannot parse"},
		{name: "time out of range", body: `{"node":{"cpu":{"time":"9999-01-01T00:00:00Z","usageCoreNanoSeconds":5}}}`, wantErr: "out of range"},
		{name: "trailing garbage", body: `{"node":{}} {"node":{}}`, wantErr: "after the top-level object"},
		{name: "container without name", body: `{"pods":[{"podRef":{"name":"a","namespace":"b"},"containers":[{"cpu":{}}]}]}`, wantErr: "without a name"},
		{name: "summary of something else", body: `{"kind":"Status","status":"Failure"}`, wantErr: "neither node nor pod stats"},
		{name: "resource error page", body: "<html><body>502 Bad Gateway</body></html>\n", resource: true, wantErr: "none of the resource metrics series"},
		{name: "resource empty", body: "", resource: true, wantErr: "none of the resource metrics series"},
		{name: "resource NaN", body: "node_cpu_usage_seconds_total NaN\n", resource: true, wantErr: "finite"},
		{name: "resource negative", body: "node_memory_working_set_bytes -1 1700000000000\n", resource: true, wantErr: "non-negative"},
		{name: "resource huge", body: "node_cpu_usage_seconds_total 1e300\n", resource: true, wantErr: "out of range"},
		{name: "resource missing value", body: "node_cpu_usage_seconds_total\n", resource: true, wantErr: "missing value"},
		{name: "resource bad number", body: "node_cpu_usage_seconds_total 12abc\n", resource: true, wantErr: "invalid syntax"},
		{name: "resource bad timestamp", body: "node_cpu_usage_seconds_total 12 soon\n", resource: true, wantErr: "timestamp"},
		{name: "resource labels not closed", body: `container_cpu_usage_seconds_total{container="a",pod="b" 1` + "\n", resource: true, wantErr: "malformed label"},
		{name: "resource unterminated label value", body: `container_cpu_usage_seconds_total{container="a` + "\n", resource: true, wantErr: "unterminated label value"},
		{name: "resource unquoted label", body: `container_cpu_usage_seconds_total{container=a} 1` + "\n", resource: true, wantErr: "not quoted"},
		{name: "resource missing pod label", body: `container_cpu_usage_seconds_total{container="a",namespace="n"} 1` + "\n", resource: true, wantErr: "lacks"},
		{name: "resource bad escape", body: `container_cpu_usage_seconds_total{container="a\q",namespace="n",pod="p"} 1` + "\n", resource: true, wantErr: "escape"},
		{name: "resource line too long", body: "node_cpu_usage_seconds_total " + strings.Repeat("1", maxResourceLine) + "\n", resource: true, wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.resource {
				_, err = DecodeResource(strings.NewReader(tt.body), "n1", requestTime)
			} else {
				_, err = DecodeSummary(strings.NewReader(tt.body), "n1", requestTime)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestResourceIgnoresOtherSeriesUnparsed(t *testing.T) {
	body := "# comment with { and \"\nsome_other_series{broken label 1 2 3\nscrape_error 1\nnode_cpu_usage_seconds_total 2 1700000000000\n"
	b, err := DecodeResource(strings.NewReader(body), "n1", requestTime)
	if err != nil {
		t.Fatal(err)
	}
	want := points.Point{Timestamp: 1700000000000 * int64(time.Millisecond), CPU: 2e9, Has: points.HasCPU}
	if diff := cmp.Diff(want, b.NodePoint); diff != "" {
		t.Errorf("node point (-want +got):\n%s", diff)
	}
}

// TestRecycledBatchesDecodeAlike decodes bodies into batches the client
// took back: a reused batch must hold exactly what a new one would, with
// nothing left from the body it held before.
func TestRecycledBatchesDecodeAlike(t *testing.T) {
	decode := func(path string) *points.Batch {
		b, err := decodeFile(t, filepath.Join("testdata", path))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Each golden decode once, deep-copied through JSON before recycling.
	copyOf := func(b *points.Batch) *points.Batch {
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var c points.Batch
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	bodies := []string{"resource-pods.txt", "resource-no-pods.txt", "resource-escaped-no-timestamps.txt"}
	want := map[string]*points.Batch{}
	for _, in := range bodies {
		want[in] = copyOf(decode(in))
	}
	// Alternate bodies of different sizes through the pool.
	for range 3 {
		for _, in := range []string{bodies[0], bodies[1], bodies[2], bodies[0], bodies[2]} {
			got := decode(in)
			if diff := cmp.Diff(want[in], got, cmpopts.EquateEmpty(), batchContent); diff != "" {
				t.Fatalf("%s decoded into a recycled batch (-want +got):\n%s", in, diff)
			}
			recycle(got)
		}
	}
}

// TestResourceLargeMagnitudes decodes the values large machines report, in
// the exponent form the kubelet prints them. Memory is bytes, bounded only
// by the uint64 of a Point (up to 2^64-1 bytes); CPU is seconds, bounded by
// a uint64 count of nanoseconds (18,446,744,073.7 s, about 584
// core-years).
func TestResourceLargeMagnitudes(t *testing.T) {
	const ms = 1795515331000
	tests := []struct {
		name, line string
		want       points.Point
		container  bool
	}{
		{name: "node of 256 GiB", line: "node_memory_working_set_bytes 2.74877906944e+11 1795515331000",
			want: points.Point{Timestamp: ms * 1e6, Memory: 274877906944, Has: points.HasMemory}},
		{name: "node of 40 GiB", line: "node_memory_working_set_bytes 4.294967296e+10 1795515331000",
			want: points.Point{Timestamp: ms * 1e6, Memory: 42949672960, Has: points.HasMemory}},
		{name: "node memory 2^63-1 bytes", line: "node_memory_working_set_bytes 9.223372036854775807e+18 1795515331000",
			want: points.Point{Timestamp: ms * 1e6, Memory: 1 << 63, Has: points.HasMemory}},
		{name: "node of 192 cores up a year", line: "node_cpu_usage_seconds_total 6.05491200123e+09 1795515331000",
			want: points.Point{Timestamp: ms * 1e6, CPU: 6054912001230000000, Has: points.HasCPU}},
		{name: "node CPU at the uint64 nanosecond limit", line: "node_cpu_usage_seconds_total 1.8446744073e+10 1795515331000",
			want: points.Point{Timestamp: ms * 1e6, CPU: 18446744073000000000, Has: points.HasCPU}},
		{name: "container of 18 GiB", line: `container_memory_working_set_bytes{container="jvm",namespace="shop",pod="api-0"} 1.8e+10 1795515331000`,
			want: points.Point{Timestamp: ms * 1e6, Memory: 18e9, Has: points.HasMemory}, container: true},
		{name: "container of 40 GiB", line: `container_memory_working_set_bytes{container="db",namespace="shop",pod="pg-0"} 4.294967296e+10 1795515331000`,
			want: points.Point{Timestamp: ms * 1e6, Memory: 42949672960, Has: points.HasMemory}, container: true},
		{name: "container CPU 1.8e10 s", line: `container_cpu_usage_seconds_total{container="db",namespace="shop",pod="pg-0"} 1.8e+10 1795515331000`,
			want: points.Point{Timestamp: ms * 1e6, CPU: 18e18, Has: points.HasCPU}, container: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeResource(strings.NewReader(tt.line+"\n"), "n1", requestTime)
			if err != nil {
				t.Fatal(err)
			}
			got := b.NodePoint
			if tt.container {
				if len(b.Pods) != 1 || len(b.Pods[0].Containers) != 1 {
					t.Fatalf("want one pod of one container, got %+v", b.Pods)
				}
				got = b.Pods[0].Containers[0].Point
			}
			// Seconds in a float64 carry 53 bits: past 2^53 ns (104
			// core-days) a counter is exact to one part in 2^52 only,
			// as it already is in the kubelet's output.
			if d := int64(got.CPU - tt.want.CPU); d != 0 && uint64(max(d, -d)) <= tt.want.CPU>>52 {
				got.CPU = tt.want.CPU
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("point (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResourceOutOfRange: values a Point cannot hold fail the node rather
// than wrap around.
func TestResourceOutOfRange(t *testing.T) {
	for _, line := range []string{
		"node_cpu_usage_seconds_total 1.8446744074e+10",
		"node_memory_working_set_bytes 1.8446744073709551616e+19",
		`container_cpu_usage_seconds_total{container="c",namespace="n",pod="p"} 1e+11`,
		`container_memory_working_set_bytes{container="c",namespace="n",pod="p"} 2e+19`,
		// 2^63 ns: one past what the int64 of a start time holds.
		`container_start_time_seconds{container="c",namespace="n",pod="p"} 9.223372036854775808e+09`,
	} {
		t.Run(line, func(t *testing.T) {
			_, err := DecodeResource(strings.NewReader(line+"\n"), "n1", requestTime)
			if err == nil || !strings.Contains(err.Error(), "out of range") {
				t.Errorf("error = %v, want one saying out of range", err)
			}
		})
	}
}

// TestSummaryNestingBound: values we skip may nest as deep as
// encoding/json allows (10,000 levels), and no deeper.
func TestSummaryNestingBound(t *testing.T) {
	for _, depth := range []int{2, maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			// The top-level object is one level; the arrays the rest.
			body := `{"node":{"cpu":{"usageCoreNanoSeconds":1}},"x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
			_, err := DecodeSummary(strings.NewReader(body), "n1", requestTime)
			if want := json.Valid([]byte(body)); (err == nil) != want {
				t.Errorf("accepted = %v (%v), encoding/json accepts: %v", err == nil, err, want)
			}
		})
	}
}
