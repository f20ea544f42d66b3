package kubelet

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// summaryKubelet answers /metrics/resource, the full /stats/summary and
// the only_cpu_and_memory one (the query exactly as the kubelet reads
// it), each with a status of its own, and records what was asked.
type summaryKubelet struct {
	resource, full, cheap []byte
	// fullStatus, when not 0, fails the full summary with it.
	fullStatus int

	mu    sync.Mutex
	asked []string
}

func (k *summaryKubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.asked = append(k.asked, r.URL.RequestURI())
	k.mu.Unlock()
	switch {
	case r.URL.Path == resourcePath:
		_, _ = w.Write(k.resource)
	case r.URL.Path == summaryPath && r.URL.Query().Get("only_cpu_and_memory") == "true":
		_, _ = w.Write(k.cheap)
	case r.URL.Path == summaryPath && k.fullStatus != 0:
		// What a kubelet whose runtime cannot report its image
		// filesystem answers.
		http.Error(w, "Internal Error: failed to get imageFs stats", k.fullStatus)
	case r.URL.Path == summaryPath:
		_, _ = w.Write(k.full)
	default:
		http.NotFound(w, r)
	}
}

// TestEphemeralStorageFlag: with EphemeralStorage, a node on
// /stats/summary is asked for the full summary instead of the
// only_cpu_and_memory one, and for the latter when the full one fails;
// a node on /metrics/resource is asked for the full summary after it,
// and keeps its CPU and memory when that fails. Without, nothing changes:
// one request, no ephemeral storage.
func TestEphemeralStorageFlag(t *testing.T) {
	_, resource := benchPayloads(3, 2)
	const fullQ, cheapQ = summaryPath, summaryPath + "?" + summaryQuery
	// Pod 2's container-1, as kubeletSummary writes it: rootfs 40961
	// bytes plus logs 8192; the node's fs 20 GiB.
	const containerEph, nodeEph = 40961 + 8192, 20 << 30
	tests := []struct {
		name       string
		endpoint   Endpoint
		flag       bool
		fullStatus int
		asked      []string
		eph        bool
	}{
		{"summary", EndpointSummary, false, 0, []string{cheapQ}, false},
		{"summary with the flag", EndpointSummary, true, 0, []string{fullQ}, true},
		{"summary with the flag, full fails", EndpointSummary, true, 500, []string{fullQ, cheapQ}, false},
		{"resource", EndpointResource, false, 0, []string{resourcePath}, false},
		{"resource with the flag", EndpointResource, true, 0, []string{resourcePath, fullQ}, true},
		{"resource with the flag, full fails", EndpointResource, true, 500, []string{resourcePath, fullQ}, false},
		{"auto with the flag", EndpointAuto, true, 0, []string{resourcePath, fullQ}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &summaryKubelet{resource: resource, full: kubeletSummary(3, 2, true), cheap: kubeletSummary(3, 2, false), fullStatus: tt.fullStatus}
			srv := httptest.NewTLSServer(k)
			defer srv.Close()
			c, _ := newTestClient(t, tt.endpoint, func(cfg *Config) { cfg.EphemeralStorage = tt.flag })
			b, err := c.GetMetrics(context.Background(), nodeFor(t, srv))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.asked, k.asked); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			ct := b.Pods[2].Containers[1]
			if ct.Has&(points.HasCPU|points.HasMemory) != points.HasCPU|points.HasMemory || b.NodePoint.Has&(points.HasCPU|points.HasMemory) != points.HasCPU|points.HasMemory {
				t.Fatalf("CPU or memory missing: container %+v, node %+v", ct.Point, b.NodePoint)
			}
			gotEph := ct.Has&points.HasEphemeralStorage != 0
			if gotEph != tt.eph || b.NodePoint.Has&points.HasEphemeralStorage != 0 != tt.eph {
				t.Fatalf("ephemeral storage present: container %v, node %v; want %v", gotEph, b.NodePoint.Has&points.HasEphemeralStorage != 0, tt.eph)
			}
			if tt.eph && (ct.EphemeralStorage != containerEph || b.NodePoint.EphemeralStorage != nodeEph) {
				t.Errorf("ephemeral storage: container %d, want %d; node %d, want %d", ct.EphemeralStorage, containerEph, b.NodePoint.EphemeralStorage, nodeEph)
			}
			c.Recycle(b)
		})
	}
}

// TestMergeEphemeralStorage: only ephemeral storage moves, by names; a
// container or pod the summary does not list goes without.
func TestMergeEphemeralStorage(t *testing.T) {
	pt := func(has points.Has, eph uint64) points.Point {
		return points.Point{Timestamp: 1, CPU: 7, Memory: 9, EphemeralStorage: eph, Has: has}
	}
	both := points.HasCPU | points.HasMemory
	dst := &points.Batch{Node: "n", NodePoint: pt(both, 0), Pods: []points.Pod{
		{Namespace: "a", Name: "p", Containers: []points.Container{{Name: "c1", Point: pt(both, 0)}, {Name: "c2", Point: pt(both, 0)}}},
		{Namespace: "b", Name: "p", Containers: []points.Container{{Name: "c1", Point: pt(both, 0)}}},
	}}
	src := &points.Batch{Node: "n", NodePoint: points.Point{EphemeralStorage: 100, Has: points.HasEphemeralStorage | points.HasCPU, CPU: 1}, Pods: []points.Pod{
		{Namespace: "b", Name: "p", Containers: []points.Container{{Name: "c1", Point: points.Point{EphemeralStorage: 5, Has: points.HasEphemeralStorage}}}},
		{Namespace: "a", Name: "p", Containers: []points.Container{{Name: "c2", Point: points.Point{EphemeralStorage: 0, Has: points.HasEphemeralStorage}}, {Name: "c9", Point: points.Point{EphemeralStorage: 3, Has: points.HasEphemeralStorage}}}},
	}}
	mergeEphemeralStorage(dst, src)
	want := &points.Batch{Node: "n", NodePoint: pt(both|points.HasEphemeralStorage, 100), Pods: []points.Pod{
		{Namespace: "a", Name: "p", Containers: []points.Container{{Name: "c1", Point: pt(both, 0)}, {Name: "c2", Point: pt(both|points.HasEphemeralStorage, 0)}}},
		{Namespace: "b", Name: "p", Containers: []points.Container{{Name: "c1", Point: pt(both|points.HasEphemeralStorage, 5)}}},
	}}
	if diff := cmp.Diff(want, dst, batchContent); diff != "" {
		t.Errorf("merged batch (-want +got):\n%s", diff)
	}
}

// TestRefusedFullSummaryIsNotAskedEveryCycle: a node whose full summary
// is refused (the 500 of a runtime without image filesystem stats) is not
// asked for it again until RetryPreferredAfter has passed, on either
// endpoint, and serves CPU and memory meanwhile; once it answers,
// ephemeral storage is back. Forget drops what was remembered.
func TestRefusedFullSummaryIsNotAskedEveryCycle(t *testing.T) {
	_, resource := benchPayloads(3, 2)
	const fullQ, cheapQ = summaryPath, summaryPath + "?" + summaryQuery
	for _, tt := range []struct {
		endpoint Endpoint
		first    []string // the requests of the first scrape; later ones ask the same without fullQ
	}{
		{EndpointSummary, []string{fullQ, cheapQ}},
		{EndpointResource, []string{resourcePath, fullQ}},
	} {
		t.Run(tt.endpoint.String(), func(t *testing.T) {
			k := &summaryKubelet{resource: resource, full: kubeletSummary(3, 2, true), cheap: kubeletSummary(3, 2, false), fullStatus: 500}
			srv := httptest.NewTLSServer(k)
			defer srv.Close()
			c, clk := newTestClient(t, tt.endpoint, func(cfg *Config) { cfg.EphemeralStorage, cfg.RetryPreferredAfter = true, 10*time.Minute })
			node := nodeFor(t, srv)
			scrape := func() (asked []string, eph bool) {
				t.Helper()
				k.mu.Lock()
				k.asked = nil
				k.mu.Unlock()
				b, err := c.GetMetrics(context.Background(), node)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Recycle(b)
				k.mu.Lock()
				defer k.mu.Unlock()
				return k.asked, b.NodePoint.Has&points.HasEphemeralStorage != 0
			}
			without := slices.DeleteFunc(slices.Clone(tt.first), func(s string) bool { return s == fullQ })
			steps := []struct {
				advance time.Duration
				fixed   bool
				asked   []string
				eph     bool
			}{
				{0, false, tt.first, false},
				{time.Minute, false, without, false},
				{9 * time.Minute, false, tt.first, false}, // retried after 10 minutes, refused again
				{5 * time.Minute, true, without, false},   // fixed, but not asked yet
				{5 * time.Minute, true, []string{tt.first[0], fullQ}, true},
				{time.Second, true, []string{tt.first[0], fullQ}, true},
			}
			if tt.endpoint == EndpointSummary {
				// On the summary endpoint the full summary replaces the
				// cheap one once it answers.
				steps[4].asked, steps[5].asked = []string{fullQ}, []string{fullQ}
			}
			for i, st := range steps {
				clk.Step(st.advance)
				if st.fixed {
					k.mu.Lock()
					k.fullStatus = 0
					k.mu.Unlock()
				}
				asked, eph := scrape()
				if diff := cmp.Diff(st.asked, asked); diff != "" || eph != st.eph {
					t.Errorf("scrape %d: ephemeral storage %v, want %v; requests (-want +got):\n%s", i, eph, st.eph, diff)
				}
			}
			c.Forget(node.Name)
			c.mu.Lock()
			n := len(c.noFull)
			c.mu.Unlock()
			if n != 0 {
				t.Errorf("Forget left %d entries", n)
			}
		})
	}
}
