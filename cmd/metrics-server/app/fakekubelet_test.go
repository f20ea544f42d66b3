package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fakeContainer is a container whose CPU counter grows at a fixed rate.
type fakeContainer struct {
	name        string
	milliCores  int64
	memoryBytes uint64
}

type fakePod struct {
	namespace, name string
	containers      []fakeContainer
}

// fakeKubelet serves /stats/summary and /metrics/resource in the kubelet's
// wire formats. Each request returns the next sample of a virtual clock that
// advances 10s per sample, so rates are exact whatever the wall clock does.
type fakeKubelet struct {
	nodeMilliCores  int64
	nodeMemoryBytes uint64
	pods            []fakePod
	// summaryStatus, when non-zero, makes /stats/summary answer with it.
	summaryStatus  int
	resourceStatus int
	wantToken      string

	start  time.Time
	sample atomic.Int64

	mu   sync.Mutex
	hits map[string]int
}

const sampleStep = 10 * time.Second

func (k *fakeKubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	if k.hits == nil {
		k.hits = map[string]int{}
	}
	k.hits[r.URL.Path]++
	k.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer "+k.wantToken {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/stats/summary":
		if r.URL.Query().Get("only_cpu_and_memory") != "true" {
			http.Error(w, "want only_cpu_and_memory=true", http.StatusBadRequest)
			return
		}
		if k.summaryStatus != 0 {
			http.Error(w, "failed to get imageFs info: unable to find data in memory cache", k.summaryStatus)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(k.summary(k.next())))
	case "/metrics/resource":
		if k.resourceStatus != 0 {
			http.Error(w, "not here", k.resourceStatus)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(k.resource(k.next())))
	default:
		http.NotFound(w, r)
	}
}

func (k *fakeKubelet) Hits(path string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hits[path]
}

// next returns the time of the next sample, on whole seconds as the
// kubelet's JSON timestamps are.
func (k *fakeKubelet) next() time.Time {
	n := k.sample.Add(1)
	return k.start.Add(time.Duration(n) * sampleStep)
}

// cpuNanos is the cumulative CPU of something running at milliCores since
// k.start. Unit: nanoseconds of CPU time.
func (k *fakeKubelet) cpuNanos(milliCores int64, at time.Time) uint64 {
	return uint64(milliCores) * uint64(at.Sub(k.start).Nanoseconds()) / 1000
}

func (k *fakeKubelet) summary(at time.Time) string {
	ts := at.UTC().Format(time.RFC3339)
	started := k.start.UTC().Format(time.RFC3339)
	var pods []string
	for _, p := range k.pods {
		var cs []string
		for _, c := range p.containers {
			cs = append(cs, fmt.Sprintf(`{"name":%q,"startTime":%q,"cpu":{"time":%q,"usageNanoCores":%d,"usageCoreNanoSeconds":%d},"memory":{"time":%q,"usageBytes":%d,"workingSetBytes":%d,"rssBytes":%d,"pageFaults":0,"majorPageFaults":0}}`,
				c.name, started, ts, c.milliCores*1e6, k.cpuNanos(c.milliCores, at), ts, c.memoryBytes+4096, c.memoryBytes, c.memoryBytes/2))
		}
		pods = append(pods, fmt.Sprintf(`{"podRef":{"name":%q,"namespace":%q,"uid":"uid-%s"},"startTime":%q,"containers":[%s]}`,
			p.name, p.namespace, p.name, started, strings.Join(cs, ",")))
	}
	return fmt.Sprintf(`{"node":{"nodeName":"n","startTime":%q,"cpu":{"time":%q,"usageNanoCores":%d,"usageCoreNanoSeconds":%d},"memory":{"time":%q,"availableBytes":1000,"usageBytes":%d,"workingSetBytes":%d}},"pods":[%s]}`,
		started, ts, k.nodeMilliCores*1e6, k.cpuNanos(k.nodeMilliCores, at), ts, k.nodeMemoryBytes+4096, k.nodeMemoryBytes, strings.Join(pods, ","))
}

func (k *fakeKubelet) resource(at time.Time) string {
	ms := at.UnixMilli()
	var b strings.Builder
	b.WriteString("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n")
	for _, p := range k.pods {
		for _, c := range p.containers {
			fmt.Fprintf(&b, "container_cpu_usage_seconds_total{container=%q,namespace=%q,pod=%q} %.9f %d\n", c.name, p.namespace, p.name, float64(k.cpuNanos(c.milliCores, at))/1e9, ms)
		}
	}
	b.WriteString("# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n")
	for _, p := range k.pods {
		for _, c := range p.containers {
			fmt.Fprintf(&b, "container_memory_working_set_bytes{container=%q,namespace=%q,pod=%q} %g %d\n", c.name, p.namespace, p.name, float64(c.memoryBytes), ms)
		}
	}
	b.WriteString("# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n")
	for _, p := range k.pods {
		for _, c := range p.containers {
			fmt.Fprintf(&b, "container_start_time_seconds{container=%q,namespace=%q,pod=%q} %g\n", c.name, p.namespace, p.name, float64(k.start.Unix()))
		}
	}
	fmt.Fprintf(&b, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %.9f %d\n", float64(k.cpuNanos(k.nodeMilliCores, at))/1e9, ms)
	fmt.Fprintf(&b, "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes %g %d\n", float64(k.nodeMemoryBytes), ms)
	b.WriteString("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n")
	return b.String()
}

// serve starts the fake kubelet over TLS on loopback.
func (k *fakeKubelet) serve() *httptest.Server {
	k.start = time.Now().Add(-time.Hour).Truncate(time.Second)
	return httptest.NewTLSServer(k)
}
