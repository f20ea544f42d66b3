package kubelet

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

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

// FuzzDecodeSummary: any body either decodes into a batch whose points all
// carry a timestamp, or fails with an error; it never panics.
func FuzzDecodeSummary(f *testing.F) {
	addSeeds(f, "summary-*.json")
	f.Add([]byte(`{"pods":[{"podRef":{"name":"a","namespace":"b"},"containers":[{"name":"c","cpu":{"usageCoreNanoSeconds":1}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeSummary(bytes.NewReader(body), "n", requestTime)
		if err != nil {
			return
		}
		checkBatch(t, b)
	})
}

// FuzzDecodeResource: the same for the Prometheus text decoder.
func FuzzDecodeResource(f *testing.F) {
	addSeeds(f, "resource-*.txt")
	f.Add([]byte("container_cpu_usage_seconds_total{container=\"a\\\"\",namespace=\"n\",pod=\"p\"} 1e3 1700000000000\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeResource(bytes.NewReader(body), "n", requestTime)
		if err != nil {
			return
		}
		checkBatch(t, b)
	})
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
