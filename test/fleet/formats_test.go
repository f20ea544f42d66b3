package fleet

import (
	"bytes"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// TestFormatsDecodeAlike checks the simulator's two answers with our own
// decoders: the same node and pod values, whatever the format.
func TestFormatsDecodeAlike(t *testing.T) {
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	n := &node{name: "n1", start: start, pods: map[string]*pod{}}
	n.self = newCounter(start, usage{milliCPU: 150, memory: 512 << 20})
	n.pods["ns/p"] = &pod{namespace: "ns", name: "p", uid: "u", node: "n1", start: start, containers: []container{
		{name: "a", cpu: newCounter(start, usage{milliCPU: 250, memory: 64 << 20})},
		{name: "b", cpu: newCounter(start, usage{milliCPU: 10, memory: 32 << 20})},
	}}
	now := start.Add(30 * time.Minute) // on a whole second: both formats read the same instant
	s, err := kubelet.DecodeSummary(bytes.NewReader(n.summary(now)), "n1", now)
	if err != nil {
		t.Fatal(err)
	}
	r, err := kubelet.DecodeResource(bytes.NewReader(n.resource(now)), "n1", now)
	if err != nil {
		t.Fatal(err)
	}
	if s.NodePoint.CPU != r.NodePoint.CPU || s.NodePoint.Memory != r.NodePoint.Memory {
		t.Errorf("node: summary %+v, resource %+v", s.NodePoint, r.NodePoint)
	}
	wantNodeCPU := uint64(150+250+10) * uint64(30*time.Minute) / 1000
	if s.NodePoint.CPU != wantNodeCPU || s.NodePoint.Memory != (512+64+32)<<20 {
		t.Errorf("node CPU %d memory %d, want %d and %d", s.NodePoint.CPU, s.NodePoint.Memory, wantNodeCPU, (512+64+32)<<20)
	}
	if len(s.Pods) != 1 || len(r.Pods) != 1 || len(s.Pods[0].Containers) != 2 {
		t.Fatalf("pods: summary %+v, resource %+v", s.Pods, r.Pods)
	}
	for i := range s.Pods[0].Containers {
		sc, rc := s.Pods[0].Containers[i], r.Pods[0].Containers[i]
		if sc.Name != rc.Name || sc.CPU != rc.CPU || sc.Memory != rc.Memory || sc.StartTime != rc.StartTime {
			t.Errorf("container %d: summary %+v, resource %+v", i, sc, rc)
		}
	}
}
