package scraper

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// gateClient answers every node at once but the gated one, whose request
// waits until release is closed and then answers with err (a batch when
// nil).
type gateClient struct {
	gated    string
	release  chan struct{}
	err      error
	inFlight chan struct{}
}

func (g *gateClient) GetMetrics(ctx context.Context, node *corev1.Node) (*points.Batch, error) {
	if node.Name == g.gated && g.release != nil {
		g.inFlight <- struct{}{}
		<-g.release
		if g.err != nil {
			return nil, g.err
		}
	}
	return &points.Batch{Node: node.Name, NodePoint: points.Point{Timestamp: 1, CPU: 7_200e9, Memory: 96 << 30, Has: points.HasCPU | points.HasMemory}}, nil
}

// mapSink holds the last batch's node point of each node, as the store
// does, and drops a node on Forget.
type mapSink struct {
	mu     sync.Mutex
	stored map[string]points.Point
}

func (m *mapSink) Store(b *points.Batch) {
	m.mu.Lock()
	m.stored[b.Node] = b.NodePoint
	m.mu.Unlock()
}

func (m *mapSink) Forget(node string) {
	m.mu.Lock()
	delete(m.stored, node)
	m.mu.Unlock()
}

func (m *mapSink) Prune() {}

// forgettingLister lists its nodes, then has the informer delete one (as
// a delete event right after the lister's snapshot would).
type forgettingLister struct {
	fakeLister
	forget func()
}

func (f forgettingLister) List(sel labels.Selector) ([]*corev1.Node, error) {
	out, err := f.fakeLister.List(sel)
	if f.forget != nil {
		f.forget()
	}
	return out, err
}

// TestForgetNodeDuringScrape: a node deleted while its request is in
// flight (or while the cycle lists the nodes) leaves no self-metric
// series, no failure entry and no stored batch, whether its request then
// succeeds or fails.
func TestForgetNodeDuringScrape(t *testing.T) {
	tests := []struct {
		name string
		// err is what the in-flight request ends with.
		err error
		// whileListing deletes the node between the cycle's listing and
		// its start instead of during the request.
		whileListing bool
	}{
		{name: "request succeeds after the delete"},
		{name: "request fails after the delete", err: errBoom},
		{name: "deleted while the cycle lists nodes", whileListing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clocktesting.NewFakeClock(epoch)
				reg := metrics.NewKubeRegistry()
				client := &gateClient{gated: "gone", err: tt.err, inFlight: make(chan struct{}, 1)}
				sink := &mapSink{stored: map[string]points.Point{}}
				lister := &forgettingLister{fakeLister: nodes("gone", "kept")}
				s := New(Config{Resolution: 15 * time.Second, Timeout: 10 * time.Second,
					Classify: func(error) string { return "decode" }}, lister, client, sink, NewMetrics(reg, 15), clk)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				// A first cycle: the node has series, a stored batch, and
				// (failing variant) a failure entry from its second one.
				if res := s.Scrape(ctx); res.Succeeded != 2 {
					t.Fatalf("first cycle %+v, want both nodes scraped", res)
				}

				client.release = make(chan struct{})
				done := make(chan Result, 1)
				if tt.whileListing {
					lister.forget = func() { s.ForgetNode("gone") }
					close(client.release)
					done <- s.Scrape(ctx)
				} else {
					go func() { done <- s.Scrape(ctx) }()
					<-client.inFlight
					s.ForgetNode("gone")
					close(client.release)
				}
				synctest.Wait()
				res := <-done
				if res.Succeeded < 1 {
					t.Errorf("second cycle %+v: the kept node was not scraped", res)
				}

				s.mu.Lock()
				st, ok := s.nodeStates["gone"]
				s.mu.Unlock()
				if ok {
					t.Errorf("the scraper still remembers the deleted node: %+v", *st)
				}
				sink.mu.Lock()
				_, stored := sink.stored["gone"]
				_, kept := sink.stored["kept"]
				sink.mu.Unlock()
				if stored || !kept {
					t.Errorf("sink holds the deleted node: %v, the kept one: %v; want only the kept one", stored, kept)
				}
				families, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range families {
					for _, m := range f.GetMetric() {
						for _, l := range m.GetLabel() {
							if l.GetName() == "node" && l.GetValue() == "gone" {
								t.Errorf("series %s{node=%q} left after the node was deleted", f.GetName(), l.GetValue())
							}
						}
					}
				}
			})
		})
	}
}
