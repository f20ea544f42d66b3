package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The figure is utime+stime: checked against the kernel's own account of
// this process (getrusage) around a stretch of work.
func TestCPUTicksCountsOwnWork(t *testing.T) {
	rusage := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	pid := os.Getpid()
	t0, err := cpuTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	r0 := rusage()
	// Work until the kernel counts 0.3 s of CPU (at most 20 s: the
	// machine may be shared).
	x := 1.0
	for began := time.Now(); rusage()-r0 < 0.3; {
		if time.Since(began) > 20*time.Second {
			t.Fatalf("20 s of work took only %.2f s of CPU (x=%v)", rusage()-r0, x)
		}
		for range 100000 {
			x = math.Sqrt(x + 1)
		}
	}
	t1, _ := cpuTicks(pid)
	r1 := rusage()
	got, want := float64(t1-t0)/clockTicks, r1-r0
	// Ticks are 10 ms; the two reads are not at the same instant.
	if math.Abs(got-want) > 0.05 {
		t.Errorf("cpuTicks moved %.2f s, getrusage %.2f s", got, want)
	}
}

func TestAPIServerPID(t *testing.T) {
	dir := t.TempDir()
	if _, err := apiserverPID(dir); err == nil {
		t.Error("no pids folder: want an error")
	}
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	for content, want := range map[string]int{"4242\n": 4242, "": 0, "-3": 0, "abc": 0} {
		if err := os.WriteFile(filepath.Join(dir, "pids", "kube-apiserver"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := apiserverPID(dir)
		if got != want || (err == nil) != (want > 0) {
			t.Errorf("pid file %q: got %d, %v; want %d", content, got, err, want)
		}
	}
}

const metricsBefore = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="authorization.k8s.io",resource="subjectaccessreviews",scope="cluster",subresource="",verb="POST",version="v1"} 100
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apiregistration.k8s.io",resource="apiservices",scope="resource",subresource="status",verb="PUT",version="v1"} 7
# HELP aggregator_openapi_v2_regeneration_count [ALPHA] Counter of OpenAPI v2 spec regeneration
# TYPE aggregator_openapi_v2_regeneration_count counter
aggregator_openapi_v2_regeneration_count{apiservice="v1.metrics.k8s.io",reason="update"} 2
# HELP aggregator_openapi_v2_regeneration_duration [ALPHA] Gauge of OpenAPI v2 spec regeneration duration
# TYPE aggregator_openapi_v2_regeneration_duration gauge
aggregator_openapi_v2_regeneration_duration{reason="update"} 0.5
# HELP apiserver_request_duration_seconds [STABLE] latency
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{verb="GET",le="+Inf"} 9
apiserver_request_duration_seconds_sum{verb="GET"} 1
apiserver_request_duration_seconds_count{verb="GET"} 9
# HELP apiserver_watch_events_total [ALPHA] Number of events sent in watch clients
# TYPE apiserver_watch_events_total counter
apiserver_watch_events_total{group="",kind="Node",version="v1"} 10
# HELP go_memstats_alloc_bytes_total Total number of bytes allocated, even if freed.
# TYPE go_memstats_alloc_bytes_total counter
go_memstats_alloc_bytes_total 1.048576e+09
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 1e-05
go_gc_duration_seconds_sum 0.1
go_gc_duration_seconds_count 40
`

const metricsAfter = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="authorization.k8s.io",resource="subjectaccessreviews",scope="cluster",subresource="",verb="POST",version="v1"} 130
apiserver_request_total{code="201",component="apiserver",dry_run="",group="authorization.k8s.io",resource="subjectaccessreviews",scope="namespace",subresource="",verb="POST",version="v1"} 6
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apiregistration.k8s.io",resource="apiservices",scope="resource",subresource="status",verb="PUT",version="v1"} 8
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="cluster",subresource="",verb="LIST",version="v1"} 1
# HELP aggregator_openapi_v2_regeneration_count [ALPHA] Counter of OpenAPI v2 spec regeneration
# TYPE aggregator_openapi_v2_regeneration_count counter
aggregator_openapi_v2_regeneration_count{apiservice="v1.metrics.k8s.io",reason="update"} 5
# HELP aggregator_openapi_v2_regeneration_duration [ALPHA] Gauge of OpenAPI v2 spec regeneration duration
# TYPE aggregator_openapi_v2_regeneration_duration gauge
aggregator_openapi_v2_regeneration_duration{reason="update"} 0.7
# HELP apiserver_request_duration_seconds [STABLE] latency
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{verb="GET",le="+Inf"} 19
apiserver_request_duration_seconds_sum{verb="GET"} 2
apiserver_request_duration_seconds_count{verb="GET"} 19
# HELP apiserver_watch_events_total [ALPHA] Number of events sent in watch clients
# TYPE apiserver_watch_events_total counter
apiserver_watch_events_total{group="",kind="Node",version="v1"} 16
# HELP go_memstats_alloc_bytes_total Total number of bytes allocated, even if freed.
# TYPE go_memstats_alloc_bytes_total counter
go_memstats_alloc_bytes_total 1.31072e+09
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 1e-05
go_gc_duration_seconds_sum 0.2
go_gc_duration_seconds_count 43
`

// load turns two snapshots half a minute apart into rates a minute: CPU
// from the ticks, requests from apiserver_request_total (the scope label
// merged away), bytes allocated and collections from the Go runtime's
// counter and summary, the other counted families kept by series, gauges
// and other histograms left out.
func TestLoadOfTwoSnapshots(t *testing.T) {
	before, err := parseCounters(strings.NewReader(metricsBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseCounters(strings.NewReader(metricsAfter))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	p := &apiserverProbe{}
	got, err := p.load(apiserverSnapshot{at: t0, cpuTicks: 1000, counters: before},
		apiserverSnapshot{at: t0.Add(30 * time.Second), cpuTicks: 1050, counters: after})
	if err != nil {
		t.Fatal(err)
	}
	want := APIServerLoad{
		CPUSecondsPerMinute: 1,   // 50 ticks = 0.5 s in half a minute
		AllocMiBPerMinute:   500, // 250 MiB in half a minute
		GCPerMinute:         6,
		Requests: []RequestCount{
			{Verb: "POST", Resource: "authorization.k8s.io/v1/subjectaccessreviews", Code: "201", PerMin: 72}, // (30 + 6) x 2
			{Verb: "LIST", Resource: "core/v1/pods", Code: "200", PerMin: 2},
			{Verb: "PUT", Resource: "apiregistration.k8s.io/v1/apiservices/status", Code: "200", PerMin: 2},
		},
		Counters: map[string]float64{
			`aggregator_openapi_v2_regeneration_count{apiservice="v1.metrics.k8s.io",reason="update"}`: 6,
			`apiserver_watch_events_total{group="",kind="Node",version="v1"}`:                          12,
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("load (-want +got):\n%s", d)
	}
}

func TestParseCountersRefusesGarbage(t *testing.T) {
	if _, err := parseCounters(strings.NewReader("apiserver_request_total{code=\"200\" 3\n")); err == nil {
		t.Error("a broken exposition: want an error")
	}
}

func TestSplitLabels(t *testing.T) {
	got := splitLabels(`a="x,y",b="q\"uo,te",c=""`)
	want := []string{`a="x,y"`, `b="q\"uo,te"`, `c=""`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// An audit log counts requests received inside the window only (a watch
// that ends after it still counts where it began), by user, agent
// product, verb, resource or path (without the query) and code; lines
// that are not events are skipped.
func TestReadAudit(t *testing.T) {
	from := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Minute)
	lines := []string{
		// before the window
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/api/v1/nodes","verb":"list","user":{"username":"admin"},"userAgent":"benchfleet/v0.0.0 (linux/amd64)","objectRef":{"resource":"nodes","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-05T19:59:59.999999Z"}`,
		// three SARs by the server in the window, one at its very start
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/apis/authorization.k8s.io/v1/subjectaccessreviews?timeout=10s","verb":"create","user":{"username":"system:serviceaccount:kube-system:metrics-server"},"userAgent":"metrics-server/v0.2.0 (linux/amd64) kubernetes/abc","objectRef":{"resource":"subjectaccessreviews","apiGroup":"authorization.k8s.io","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-12-05T20:00:00Z"}`,
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/apis/authorization.k8s.io/v1/subjectaccessreviews?timeout=10s","verb":"create","user":{"username":"system:serviceaccount:kube-system:metrics-server"},"userAgent":"metrics-server/v0.2.0 (linux/amd64) kubernetes/abc","objectRef":{"resource":"subjectaccessreviews","apiGroup":"authorization.k8s.io","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-12-05T20:00:30Z"}`,
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/apis/authorization.k8s.io/v1/subjectaccessreviews?timeout=10s","verb":"create","user":{"username":"system:serviceaccount:kube-system:metrics-server"},"userAgent":"metrics-server/v0.2.0 (linux/amd64) kubernetes/abc","objectRef":{"resource":"subjectaccessreviews","apiGroup":"authorization.k8s.io","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-12-05T20:01:00Z"}`,
		`not json, a line cut mid-write {"stage":`,
		// a watch begun in the window, logged when it ended after it
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/api/v1/pods?fieldSelector=status.phase%3DRunning&watch=true","verb":"watch","user":{"username":"system:serviceaccount:kube-system:metrics-server"},"userAgent":"metrics-server/v0.2.0","objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-05T20:01:10Z","stageTimestamp":"2026-12-05T20:09:00Z"}`,
		// a non-resource request, as our server's log shows the aggregator's
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/openapi/v2?timeout=32s","verb":"get","user":{"username":"system:aggregator"},"userAgent":"","responseStatus":{"code":304},"requestReceivedTimestamp":"2026-12-05T20:01:20Z"}`,
		// at the end of the window: outside
		`{"kind":"Event","stage":"ResponseComplete","requestURI":"/openapi/v2","verb":"get","user":{"username":"system:aggregator"},"responseStatus":{"code":304},"requestReceivedTimestamp":"2026-12-05T20:02:00Z"}`,
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readAudit(path, from, to)
	if err != nil {
		t.Fatal(err)
	}
	sa := "system:serviceaccount:kube-system:metrics-server"
	want := []RequestCount{
		{User: sa, UserAgent: "metrics-server/v0.2.0", Verb: "create", Resource: "authorization.k8s.io/v1/subjectaccessreviews", Code: "201", PerMin: 1.5},
		{User: "system:aggregator", Verb: "get", Resource: "/openapi/v2", Code: "304", PerMin: 0.5},
		{User: sa, UserAgent: "metrics-server/v0.2.0", Verb: "watch", Resource: "core/v1/pods", Code: "200", PerMin: 0.5},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("readAudit (-want +got):\n%s", d)
	}
	if _, err := readAudit(filepath.Join(t.TempDir(), "missing.log"), from, to); err == nil {
		t.Error("a missing log: want an error")
	}
}
