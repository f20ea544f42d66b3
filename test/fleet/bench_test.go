package fleet

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRender is what one scrape of one node costs the simulator, for
// each endpoint, gzip as Go's client asks: 30 pods of 2 containers, the
// benchmark fleet's default node. Each iteration is a new sample (the
// cache of the latest one is cleared), as when every node is scraped once
// a sample interval. cpu-ns/op is the process's CPU time (GC included) an
// answer, steadier than ns/op on a shared machine.
func BenchmarkRender(b *testing.B) {
	f, n := testNode(b, 0, 30, 64<<20)
	fast := &Fleet{cfg: Config{FastResource: true}, stats: f.stats, processStart: f.processStart}
	for _, bm := range []struct {
		name, path string
		f          *Fleet
	}{
		{"resource-kubelet", "/metrics/resource", f},
		{"resource-fast", "/metrics/resource", fast},
		{"summary-kubelet", "/stats/summary?only_cpu_and_memory=true", f},
	} {
		h, path := bm.f.handler(n), bm.path
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				n.mu.Lock()
				n.cached = [2]cachedSummary{}
				n.mu.Unlock()
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
