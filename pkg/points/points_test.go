package points

import (
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func fill(b *Batch, node string, pods [][]string) {
	n := 0
	for _, p := range pods {
		n += len(p) - 1
	}
	b.Reset(node, len(pods), n)
	for _, p := range pods {
		i := len(b.Pods)
		b.AddPod("ns", p[0], len(p)-1)
		for j, c := range p[1:] {
			b.Pods[i].Containers = append(b.Pods[i].Containers, Container{Name: c, Point: Point{Timestamp: int64(j + 1)}})
		}
	}
}

func TestBatchReuse(t *testing.T) {
	pods := [][]string{{"a", "c1", "c2"}, {"b"}, {"c", "c1"}}
	var b Batch
	fill(&b, "n1", pods)
	want := Batch{Node: "n1", Pods: []Pod{
		{Namespace: "ns", Name: "a", Containers: []Container{{Name: "c1", Point: Point{Timestamp: 1}}, {Name: "c2", Point: Point{Timestamp: 2}}}},
		{Namespace: "ns", Name: "b", Containers: []Container{}},
		{Namespace: "ns", Name: "c", Containers: []Container{{Name: "c1", Point: Point{Timestamp: 1}}}},
	}}
	if diff := cmp.Diff(want.Pods, b.Pods, cmpopts.EquateEmpty()); diff != "" || b.Node != want.Node {
		t.Fatalf("filled batch of node %q, pods (-want +got):\n%s", b.Node, diff)
	}
	// A pod's containers must not run into the next pod's.
	b.Pods[1].Containers = append(b.Pods[1].Containers, Container{Name: "extra"})
	if b.Pods[2].Containers[0].Name != "c1" {
		t.Errorf("appending to pod b overwrote pod c's container: %+v", b.Pods[2].Containers)
	}
	if allocs := testing.AllocsPerRun(100, func() { fill(&b, "n1", pods) }); allocs != 0 {
		t.Errorf("refilling a batch of the same size allocated %.0f times, want 0", allocs)
	}
	b.Reset("n2", 0, 0)
	if len(b.Pods) != 0 || b.Node != "n2" || b.NodePoint != (Point{}) {
		t.Errorf("reset batch holds %+v", b)
	}
	for _, c := range b.containers[:cap(b.containers)] {
		if c.Name != "" {
			t.Errorf("reset batch keeps container name %q alive", c.Name)
		}
	}
}

func TestAddPodBeyondReset(t *testing.T) {
	var b Batch
	b.Reset("n", 1, 1)
	b.AddPod("ns", "a", 1)
	b.Pods[0].Containers = append(b.Pods[0].Containers, Container{Name: "a1"})
	b.AddPod("ns", "b", 3) // more than Reset was told
	for _, c := range []string{"b1", "b2", "b3"} {
		b.Pods[1].Containers = append(b.Pods[1].Containers, Container{Name: c})
	}
	if got := []string{b.Pods[0].Containers[0].Name, b.Pods[1].Containers[0].Name, b.Pods[1].Containers[2].Name}; !cmp.Equal(got, []string{"a1", "b1", "b3"}) {
		t.Errorf("containers %v, want [a1 b1 b3]", got)
	}
}

// TestSizes guards what a point and a served container cost: a Point is
// 56 bytes (swap and ephemeral storage included), a ContainerUsage 56
// (its name and 40 bytes of usage), so listing 150,000 pods of 2
// containers holds 16.8 MB of them.
func TestSizes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want uintptr
	}{
		{"Point", unsafe.Sizeof(Point{}), 56},
		{"Usage", unsafe.Sizeof(Usage{}), 40},
		{"ContainerUsage", unsafe.Sizeof(ContainerUsage{}), 56},
	} {
		if tt.got != tt.want {
			t.Errorf("%s is %d bytes, want %d", tt.name, tt.got, tt.want)
		}
	}
}
