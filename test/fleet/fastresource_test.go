package fleet

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// fixedSummary is a stats.SummaryProvider of one sample.
type fixedSummary struct{ s *statsapi.Summary }

func (p fixedSummary) GetCPUAndMemoryStats(context.Context) (*statsapi.Summary, error) {
	return p.s, nil
}

func (p fixedSummary) Get(context.Context, bool) (*statsapi.Summary, error) { return p.s, nil }

// serve answers a GET of /metrics/resource, gzip accepted, and returns
// the header and the uncompressed body.
func serve(t *testing.T, h http.HandlerFunc) (http.Header, []byte) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/metrics/resource", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	h(w, r)
	if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d, Content-Encoding %q", w.Code, w.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return w.Header(), body
}

// TestFastResourceIsTheKubelets holds the fast path to the kubelet's
// collector: the same bytes and headers for the same sample, on samples
// of every shape (large node, 18 GiB container, no pods, a container
// without a start time, a skewed clock).
func TestFastResourceIsTheKubelets(t *testing.T) {
	for _, tt := range []struct {
		name  string
		node  int
		pods  int
		skew  time.Duration
		tweak func(*statsapi.Summary)
	}{
		{name: "small node", node: 0, pods: 30},
		{name: "large node with an 18 GiB container", node: 2, pods: 12},
		{name: "no pods", node: 1, pods: 0},
		{name: "clock 5m behind", node: 5, pods: 3, skew: -5 * time.Minute},
		{name: "container without a start time, pod without stats", node: 0, pods: 2, tweak: func(s *statsapi.Summary) {
			s.Pods[0].Containers[1].StartTime = metav1.Time{}
			s.Pods[1].CPU, s.Pods[1].Memory, s.Pods[1].Swap = nil, nil, nil
			s.Pods[1].Containers[0].Memory = nil
		}},
		{name: "node with swap, a container swapping", node: 3, pods: 3, tweak: func(s *statsapi.Summary) {
			v := uint64(256 << 20)
			s.Pods[1].Containers[0].Swap.SwapUsageBytes = &v
		}},
		{name: "kubelet without swap stats", node: 4, pods: 3, tweak: func(s *statsapi.Summary) {
			s.Node.Swap = nil
			for i := range s.Pods {
				s.Pods[i].Swap = nil
				for j := range s.Pods[i].Containers {
					s.Pods[i].Containers[j].Swap = nil
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, n := testNode(t, tt.node, tt.pods, 18<<30)
			n.skew = tt.skew
			s := n.sample(n.clock.Now(), false)
			if tt.tweak != nil {
				tt.tweak(s)
			}
			kh, kubelet := serve(t, kubeletResourceHandler(fixedSummary{s}).ServeHTTP)
			fh, fast := serve(t, func(w http.ResponseWriter, r *http.Request) { serveFastResource(w, r, s, f.processStart) })
			if diff := cmp.Diff(string(kubelet), string(fast)); diff != "" {
				t.Errorf("fast path differs from the kubelet's collector (-kubelet +fast):\n%s", diff)
			}
			for _, h := range []string{"Content-Type", "Content-Encoding"} {
				if kh.Get(h) != fh.Get(h) {
					t.Errorf("%s: kubelet %q, fast %q", h, kh.Get(h), fh.Get(h))
				}
			}
			if kh.Get("Process-Start-Time-Unix") == "" || fh.Get("Process-Start-Time-Unix") == "" {
				t.Errorf("Process-Start-Time-Unix: kubelet %q, fast %q", kh.Get("Process-Start-Time-Unix"), fh.Get("Process-Start-Time-Unix"))
			}
			if tt.pods > 0 && !bytes.Contains(fast, []byte("container_start_time_seconds{")) {
				t.Errorf("no container series:\n%s", fast)
			}
		})
	}
}
