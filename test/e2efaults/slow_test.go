package e2efaults

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
)

// The fleet of TestSlowKubelets: most kubelets answer correctly but only
// after 6s of the 10s default timeout, a few answer at once and four are
// broken each its own way.
const (
	slowNodes  = 240
	slowCount  = 200
	slowDelay  = 6 * time.Second
	faultyFrom = slowCount // nodes faultyFrom..faultyFrom+3 are broken
	fastFrom   = slowCount + 4
	// slowPort keeps these kubelets apart from the suite's, which listen
	// on the same loopback addresses (127.40.0.x) at port 10250.
	slowPort = 10350
)

// TestSlowKubelets: our server at its default flags as deployed (the
// manifests' 15s resolution, the default 10s timeout and 64 decode slots),
// among 240 kubelets of which 200 answer
// correctly in 6s, serves every healthy node through the kube-apiserver
// within two resolutions of its start, and then keeps every served sample
// younger than two resolutions plus the timeout. The suite's own server
// steps aside meanwhile and is started again afterwards; the suite's
// nodes (14 of them hanging) are scraped too.
func TestSlowKubelets(t *testing.T) {
	ctx := context.Background()
	ca, err := e.suite.LoadCA(pki.KubeletCA)
	must(t, err)
	modes := map[int]fleet.Mode{
		faultyFrom:     fleet.ModeHang,
		faultyFrom + 1: fleet.ModeError500,
		faultyFrom + 2: fleet.ModeGarbage,
		faultyFrom + 3: fleet.ModeWrongTLSName,
	}
	fctx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	f, err := fleet.New(fleet.Config{Client: e.client, Nodes: slowNodes, Prefix: "slw", KubeletCA: ca,
		AddressBase: addressBase, Port: slowPort, Modes: modes, Logf: logf})
	must(t, err)
	names := f.NodeNames()
	for i := range slowCount {
		must(t, f.SetDelay(names[i], slowDelay))
	}
	must(t, f.Run(fctx))
	defer func() {
		for _, n := range names {
			if err := f.DeleteNode(ctx, n); err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	}()
	var healthy []string
	for i, n := range names {
		if i < faultyFrom || i >= fastFrom {
			healthy = append(healthy, n)
		}
	}

	// Our server at its defaults instead of the suite's, then the suite's
	// again.
	e.cluster.StopMetricsServer()
	must(t, e.cluster.KeepMetricsServerLog())
	defer func() {
		e.cluster.StopMetricsServer()
		if err := e.cluster.KeepMetricsServerLog(); err != nil {
			t.Errorf("keeping our server's log: %v", err)
		}
		if _, err := e.cluster.StartMetricsServer(ctx, e.server); err != nil {
			t.Errorf("starting the suite's server again: %v", err)
		}
	}()
	var (
		mu      sync.Mutex
		started time.Time
	)
	ms := e.server
	// The defaults as deployed: the flags' but for the manifests' 15s
	// resolution (the flag's own default is upstream's 60s); -v=1 only
	// adds a line per scrape cycle.
	ms.Args = []string{"--metric-resolution=" + resolution.String(), "-v=1"}
	ms.Started = func(int) {
		mu.Lock()
		started = time.Now()
		mu.Unlock()
	}
	_, err = e.cluster.StartMetricsServer(ctx, ms)
	must(t, err)
	mu.Lock()
	start := started
	mu.Unlock()

	// Every healthy node listed within two resolutions of the start.
	const listedWithin = 2 * resolution
	var listed time.Duration
	err = poll(ctx, listedWithin+30*time.Second, func() error {
		served, err := e.servedNodes(ctx)
		if err != nil {
			return err
		}
		missing := 0
		for _, n := range healthy {
			if _, ok := served[n]; !ok {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d healthy nodes not served %v after the start", missing, len(healthy), time.Since(start).Round(time.Second))
		}
		listed = time.Since(start)
		return nil
	})
	must(t, err)
	t.Logf("every one of the %d healthy nodes served %v after the server's start", len(healthy), listed.Round(100*time.Millisecond))
	if listed > listedWithin {
		t.Errorf("every healthy node served only %v after the start, want within two resolutions (%v)", listed.Round(100*time.Millisecond), listedWithin)
	}

	// Then, over four cycles, every healthy node stays served and every
	// sample served is younger than two resolutions plus the timeout.
	const maxAge = 2*resolution + timeout
	var oldest time.Duration
	polls := 0
	for end := time.Now().Add(4 * resolution); time.Now().Before(end); time.Sleep(2 * time.Second) {
		served, err := e.servedNodes(ctx)
		if err != nil {
			t.Errorf("listing node metrics: %v", err)
			continue
		}
		polls++
		now := time.Now()
		for _, n := range healthy {
			ts, ok := served[n]
			if !ok {
				t.Errorf("%v after the start: healthy node %s not served", now.Sub(start).Round(time.Second), n)
				continue
			}
			age := now.Sub(ts)
			oldest = max(oldest, age)
			if age >= maxAge {
				t.Errorf("%v after the start: node %s served a sample %v old, want younger than %v", now.Sub(start).Round(time.Second), n, age.Round(100*time.Millisecond), maxAge)
			}
		}
	}
	if polls < 10 {
		t.Errorf("only %d successful polls over four resolutions", polls)
	}
	t.Logf("over %d polls in four resolutions, the oldest sample served was %v old (limit %v)", polls, oldest.Round(100*time.Millisecond), maxAge)
}

// servedNodes lists node metrics through the kube-apiserver: each node's
// sample time, by name.
func (e *env) servedNodes(ctx context.Context) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := e.metrics.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(list.Items))
	for _, n := range list.Items {
		out[n.Name] = n.Timestamp.Time
	}
	return out, nil
}
