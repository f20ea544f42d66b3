package server

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

type progress struct {
	warm  bool
	nodes int
}

func (p progress) Warm() (bool, int) { return p.warm, p.nodes }

// kubeletSays is what one node's kubelet reports in each scrape.
type kubeletSays struct {
	node string
	// nodeStats: the kubelet reports the node's own usage.
	nodeStats bool
	pods      []string
	// measured: the pods' containers are reported (false: the pods are
	// listed without containers, as with a cAdvisor that lost them).
	measured bool
}

// scrapeInto stores one scrape of each kubelet at the clock's time: nodes
// of 64 cores at 40 in use and 300 GiB of working set, pods of one
// container at 3 cores and 18 GiB.
func scrapeInto(s *storage.Store, clk *clocktesting.FakeClock, kubelets []kubeletSays) {
	now := clk.Now()
	booted := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	started := time.Date(2026, 11, 26, 8, 0, 0, 375_000_000, time.UTC)
	for _, k := range kubelets {
		b := &points.Batch{Node: k.node}
		if k.nodeStats {
			b.NodePoint = points.Point{Timestamp: now.UnixNano(), CPU: uint64(40 * now.Sub(booted).Nanoseconds()),
				Memory: 300 << 30, Has: points.HasCPU | points.HasMemory}
		}
		for _, name := range k.pods {
			p := points.Pod{Namespace: "shop", Name: name}
			if k.measured {
				p.Containers = []points.Container{{Name: "app", Point: points.Point{Timestamp: now.UnixNano(),
					StartTime: started.UnixNano(), CPU: uint64(3 * now.Sub(started).Nanoseconds()),
					Memory: 18 << 30, Has: points.HasCPU | points.HasMemory}}}
			}
			b.Pods = append(b.Pods, p)
		}
		s.Store(b)
	}
}

// TestStorageReady: metric-storage-ready passes once a complete start-up
// has stored what the cluster has, nodes and pods, as upstream's fix for
// its issue 1816 means it, and is not unready forever in a cluster without
// nodes or pods.
func TestStorageReady(t *testing.T) {
	healthy := []kubeletSays{
		{node: "node-1", nodeStats: true, pods: []string{"web-1", "web-2"}, measured: true},
		{node: "node-2", nodeStats: true, pods: []string{"db-0"}, measured: true},
	}
	tests := []struct {
		name     string
		progress progress
		kubelets []kubeletSays
		// podsRunning is what the pod informer says; nil: a node
		// selector keeps it out.
		podsRunning func() bool
		wantReady   bool
	}{
		{name: "nodes and pods served", progress: progress{true, 2}, kubelets: healthy,
			podsRunning: yes, wantReady: true},
		{name: "before the follow-up cycle ends", progress: progress{false, 2}, kubelets: healthy,
			podsRunning: yes},
		{name: "nodes only while pods run", progress: progress{true, 2},
			kubelets:    []kubeletSays{{node: "node-1", nodeStats: true}, {node: "node-2", nodeStats: true}},
			podsRunning: yes},
		{name: "pods listed without containers", progress: progress{true, 1},
			kubelets:    []kubeletSays{{node: "node-1", nodeStats: true, pods: []string{"web-1"}}},
			podsRunning: yes},
		{name: "pods listed without containers, informer empty", progress: progress{true, 1},
			kubelets:    []kubeletSays{{node: "node-1", nodeStats: true, pods: []string{"web-1"}}},
			podsRunning: no},
		{name: "pods without a node", progress: progress{true, 1},
			kubelets:    []kubeletSays{{node: "node-1", pods: []string{"web-1"}, measured: true}},
			podsRunning: yes},
		{name: "nodes selected, none answered", progress: progress{true, 3}, podsRunning: yes},
		{name: "a cluster without pods", progress: progress{true, 2},
			kubelets:    []kubeletSays{{node: "node-1", nodeStats: true}, {node: "node-2", nodeStats: true}},
			podsRunning: no, wantReady: true},
		{name: "selected nodes without pods", progress: progress{true, 1},
			kubelets: []kubeletSays{{node: "node-1", nodeStats: true}}, wantReady: true},
		{name: "a cluster without nodes", progress: progress{true, 0}, podsRunning: no, wantReady: true},
		{name: "no node matches the selector", progress: progress{true, 0}, wantReady: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
			store := storage.NewStore(storage.Options{StaleAfter: 40 * time.Second, Clock: clk})
			// The start-up cycle and its follow-up 2s later.
			scrapeInto(store, clk, tt.kubelets)
			clk.Step(2 * time.Second)
			scrapeInto(store, clk, tt.kubelets)
			err := storageReady(tt.progress, store, tt.podsRunning).Check(nil)
			if (err == nil) != tt.wantReady {
				t.Errorf("ready: %v (%v), want %v", err == nil, err, tt.wantReady)
			}
		})
	}
	if got := storageReady(progress{}, storage.NewStore(storage.Options{}), nil).Name(); got != "metric-storage-ready" {
		t.Errorf("check name %q, want upstream's metric-storage-ready", got)
	}
}

func yes() bool { return true }
func no() bool  { return false }

// TestPodsRunning: the pod informer's cache says whether pods run, without
// listing them, and says nothing under a node selector (it does not know
// the pods' nodes).
func TestPodsRunning(t *testing.T) {
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &metav1.PartialObjectMetadata{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	running := podsRunning(inf, labels.Everything())
	if running == nil || running() {
		t.Fatal("an empty pod cache says pods run")
	}
	pod := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}}
	if err := inf.GetIndexer().Add(pod); err != nil {
		t.Fatal(err)
	}
	if !running() {
		t.Error("a cached pod does not count as running")
	}
	if err := inf.GetIndexer().Delete(pod); err != nil {
		t.Fatal(err)
	}
	if running() {
		t.Error("a deleted pod still counts as running")
	}
	if podsRunning(inf, labels.SelectorFromSet(labels.Set{"pool": "gpu"})) != nil {
		t.Error("under a node selector the informer cannot know the pods' nodes, yet answers")
	}
}
