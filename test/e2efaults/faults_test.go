package e2efaults

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// TestFaultsAtFleetScale runs every scenario on one cluster, on one
// timeline: the faults of disjoint node sets at once, then the
// kube-apiserver restarted, then our server killed. An observer reads the
// typed API, kubectl top and the HPA throughout; each scenario judges what
// it read in its own window.
func TestFaultsAtFleetScale(t *testing.T) {
	began := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	obs := &observer{e: e}
	obs.run(ctx)
	if !t.Run("baseline", e.baseline) {
		t.FailNow()
	}
	t.Run("faults at once", func(t *testing.T) { e.faultsAtOnce(t, obs) })
	t.Run("kube-apiserver restarted", func(t *testing.T) { e.apiserverRestarted(t, obs) })
	t.Run("server killed mid-cycle", func(t *testing.T) { e.serverKilled(t, obs) })
	t.Logf("scenarios took %v", time.Since(began).Round(time.Second))
}

// baseline waits until every node but the hanging ones is served, with its
// pod, the HPA reads its metric, and the server is past its start: every
// healthy node has shown two timestamps (its follow-up scrape's and its
// first regular scrape's), so the faults meet regular cycles.
func (e *env) baseline(t *testing.T) {
	ctx := context.Background()
	var want []string
	for _, n := range e.fleet.NodeNames() {
		if !slices.Contains(e.roles.hanging, n) {
			want = append(want, n)
		}
	}
	start := time.Now()
	seen := map[string]map[time.Time]bool{}
	err := poll(ctx, 3*time.Minute, func() error {
		s := e.readAPI(ctx)
		if s.err != nil {
			return s.err
		}
		for _, n := range want {
			got, ok := s.nodes[n]
			if !ok {
				return fmt.Errorf("node %s not served yet (%d of %d)", n, len(s.nodes), len(want))
			}
			if _, ok := s.pods["load-"+n]; !ok {
				return fmt.Errorf("pod load-%s not served yet", n)
			}
			if seen[n] == nil {
				seen[n] = map[time.Time]bool{}
			}
			seen[n][got.ts] = true
		}
		for _, n := range e.roles.healthy {
			if len(seen[n]) < 2 {
				return fmt.Errorf("node %s has shown %d timestamps, want 2", n, len(seen[n]))
			}
		}
		if h := e.readHPA(ctx); !h.active || h.utilization < 0 {
			return fmt.Errorf("HPA has no current metric yet: %s", h.why)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes served with their pods, in regular cycles, and the HPA reading %v after the server was ready", len(want), time.Since(start).Round(time.Second))
}

// window is how long the faults run together before they are judged: six
// cycles.
const window = 6 * resolution

// faultsAtOnce turns the faults on at T0 and judges the snapshots of the
// following window: scenarios 1 to 5 of the issue, on disjoint nodes.
func (e *env) faultsAtOnce(t *testing.T, obs *observer) {
	ctx := context.Background()
	r := e.roles
	t0 := time.Now()
	must(t, e.fleet.SetDelay(r.slowUnder, timeout-time.Second))
	must(t, e.fleet.SetDelay(r.slowOver, timeout+time.Second))
	for _, n := range r.flapping {
		must(t, e.fleet.SetFlap(n, &fleet.Flap{})) // a 500 every other scrape
	}
	for n, d := range r.skewJump {
		must(t, e.fleet.SetClockSkew(n, d))
	}
	churned := e.churn(ctx, t0)
	end := t0.Add(window)
	if !churned.readded.IsZero() {
		end = later(end, churned.readded.Add(2*resolution+15*time.Second))
	}
	time.Sleep(time.Until(end))
	api, top, hpa := obs.between(t0, end)
	_, failures, err := e.selfMetrics(ctx)
	must(t, err)
	nodes, pods, err := e.expectations(ctx)
	must(t, err)
	t.Logf("faults from %s to %s: %d typed snapshots, %d kubectl top snapshots, %d HPA samples", clock(t0), clock(end), len(api), len(top), len(hpa))

	t.Run("hanging nodes starve no healthy node", func(t *testing.T) {
		j := judge{t: t, nodes: nodes, pods: pods}
		worst := j.served("healthy", api, top, r.healthy, append(loadPods(r.healthy...), webPods(pods)...), resolution*3/2)
		j.absent("hanging", api, top, r.hanging, loadPods(r.hanging...))
		for _, n := range r.healthy {
			if f := failures[n]; len(f) > 0 {
				t.Errorf("healthy node %s has scrape failures: %+v", n, f)
			}
		}
		reasons := map[string]float64{}
		for _, n := range r.hanging {
			if len(failures[n]) == 0 {
				t.Errorf("hanging node %s has no scrape failures counted", n)
			}
			for _, f := range failures[n] {
				reasons[f.reason] += f.count
			}
		}
		t.Logf("%d healthy nodes in all %d typed and %d kubectl top snapshots, oldest timestamp %v; hanging nodes' failures by reason %v",
			len(r.healthy), len(api), len(top), worst.Round(time.Second), reasons)
		if len(top) > 0 {
			t.Log(topLine(top[len(top)-1]))
		}
	})

	t.Run("slow just under and over the timeout", func(t *testing.T) {
		j := judge{t: t, nodes: nodes, pods: pods}
		// It is scraped beside the hanging nodes, each with its own request: served whenever
		// listed with its true usage, listed in most snapshots.
		a, k := listed(api, top, r.slowUnder)
		worst := j.served("slow-under when listed", a, k, []string{r.slowUnder}, loadPods(r.slowUnder), 0)
		if 4*len(a) < 3*len(api) || 4*len(k) < 3*len(top) {
			t.Errorf("slow-under node %s listed in %d of %d typed and %d of %d kubectl top snapshots, want 3 in 4", r.slowUnder, len(a), len(api), len(k), len(top))
		}
		// Its last success was at most about one resolution before T0;
		// it is served until staleness after that, and gone a cycle
		// (and the request timeout) after.
		stillServed, gone := t0.Add(staleness-resolution-5*time.Second), t0.Add(staleness+resolution+timeout)
		a1, k1, _ := obs.between(t0, stillServed)
		j.served("slow-over before staleness", a1, k1, []string{r.slowOver}, loadPods(r.slowOver), 0)
		a2, k2, _ := obs.between(gone, end)
		if len(a2) == 0 || len(k2) == 0 {
			t.Errorf("no snapshots after %s to see slow-over gone", clock(gone))
		}
		j.absent("slow-over after staleness", a2, k2, []string{r.slowOver}, loadPods(r.slowOver))
		if !hasReason(failures[r.slowOver], "timeout") {
			t.Errorf("slow-over node %s: failures %+v, want reason timeout", r.slowOver, failures[r.slowOver])
		}
		t.Logf("%s (%v) listed in %d of %d typed and %d of %d kubectl top snapshots, oldest timestamp %v, longest gap %v, failures %+v; %s (%v) served until %s, gone from %s on, failures %+v",
			r.slowUnder, timeout-time.Second, len(a), len(api), len(k), len(top), worst.Round(time.Second), longestGap(api, r.slowUnder).Round(time.Second),
			failures[r.slowUnder], r.slowOver, timeout+time.Second,
			clock(stillServed), clock(gone), failures[r.slowOver])
	})

	t.Run("flapping nodes", func(t *testing.T) {
		j := judge{t: t, nodes: nodes, pods: pods}
		// A success every other cycle.
		worst := j.served("flapping", api, top, r.flapping, loadPods(r.flapping...), 2*resolution+resolution/2)
		var counts []float64
		for _, n := range r.flapping {
			c := 0.0
			for _, f := range failures[n] {
				c += f.count
			}
			if c < 2 {
				t.Errorf("flapping node %s: %v failures counted, want at least 2 in %v", n, c, window)
			}
			counts = append(counts, c)
		}
		t.Logf("%d flapping nodes (%.0f%% of %d) served throughout with their pods, oldest timestamp %v, failures %v",
			len(r.flapping), 100*float64(len(r.flapping))/float64(r.total), r.total, worst.Round(time.Second), counts)
	})

	t.Run("clocks 5 minutes off", func(t *testing.T) {
		j := judge{t: t, nodes: nodes, pods: pods}
		j.noFutureTimestamps(api)
		for n, d := range r.skewFromStart {
			maxAge := resolution * 3 / 2
			if d < 0 {
				maxAge = 0 // the kubelet's own sample time, minutes old
			}
			worst := j.served(fmt.Sprintf("clock %v since the start", d), api, top, []string{n}, loadPods(n), maxAge)
			t.Logf("%s, clock %v since the start: served throughout, timestamp up to %v old", n, d, worst.Round(time.Second))
		}
		// A jump is believed at the second point that shows it; the pair
		// starts over then, so the node is missing for a cycle and has a
		// rate again two scrapes after the jump was believed.
		settled := t0.Add(4 * resolution)
		a, k, _ := obs.between(settled, end)
		for n, d := range r.skewJump {
			j.served(fmt.Sprintf("clock jumped %v", d), a, k, []string{n}, loadPods(n), 0)
			if g := longestGap(api, n); g > 2*resolution {
				t.Errorf("%s, clock jumped %v: missing for %v, want at most %v", n, d, g.Round(time.Second), 2*resolution)
			}
			t.Logf("%s, clock jumped %v at %s: %s; served with its true usage from %s on", n, d, clock(t0), gapAccount(api, n), clock(settled))
		}
	})

	t.Run("node deleted and re-added", func(t *testing.T) {
		j := judge{t: t, nodes: nodes, pods: pods}
		c := r.churn
		if churned.err != nil {
			t.Fatal(churned.err)
		}
		gone, _, _ := obs.between(churned.apiDeleted.Add(5*time.Second), churned.readded)
		j.absent("deleted node", gone, nil, []string{c}, nil)
		if len(churned.linesWhileGone) > 0 {
			t.Errorf("/metrics still names %s 10 s after it was deleted:\n%s", c, strings.Join(churned.linesWhileGone, "\n"))
		}
		back := churned.readded.Add(2*resolution + 10*time.Second)
		a, k, _ := obs.between(back, end)
		if len(a) == 0 {
			t.Fatalf("no snapshots after %s", clock(back))
		}
		worst := j.served("re-added node", a, k, []string{c}, loadPods(c), resolution*3/2)
		if f := failures[c]; len(f) > 0 {
			t.Errorf("%s: failure series %+v after it came back; the new node never failed", c, f)
		}
		body, _, err := e.selfMetrics(ctx)
		must(t, err)
		last, ok := gauge(body, "metrics_server_kubelet_last_request_time_seconds", c)
		if !ok || last < float64(churned.readded.Unix()) {
			t.Errorf("%s: last request time %v (found %v), want after it came back at %s", c, last, ok, clock(churned.readded))
		}
		t.Logf("%s: in flight at %s, deleted at %s, gone from every list; back on %s at %s, served from %s with its pod (oldest timestamp %v); /metrics while gone: %d lines",
			c, clock(churned.inflight), clock(churned.apiDeleted), churned.newIP, clock(churned.readded), clock(back), worst.Round(time.Second), len(churned.linesWhileGone))
	})

	t.Run("HPA keeps a current metric", func(t *testing.T) {
		j := judge{t: t, nodes: nodes, pods: pods}
		j.hpaCurrent("during the faults", hpa)
		t.Logf("%d HPA samples, all ScalingActive with %d%% CPU utilization", len(hpa), webUtilization)
	})
}

// churned is what churn did and when.
type churned struct {
	inflight, apiDeleted, readded time.Time
	newIP                         net.IP
	// linesWhileGone are the /metrics lines that named the node 10 s
	// after its request in flight failed.
	linesWhileGone []string
	err            error
}

// churn deletes the churn node while a scrape of it is in flight (its
// Node object first, then its kubelet, so the request fails after the
// server forgot the node), then adds it again on a new address.
func (e *env) churn(ctx context.Context, t0 time.Time) (c churned) {
	name := e.roles.churn
	hits := func() int { return e.fleet.Hits(name, "/metrics/resource") + e.fleet.Hits(name, "/stats/summary") }
	if c.err = e.fleet.SetDelay(name, 4500*time.Millisecond); c.err != nil {
		return c
	}
	before := hits()
	for deadline := time.Now().Add(2 * resolution); hits() == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.err = fmt.Errorf("no scrape of %s in %v", name, 2*resolution)
			return c
		}
	}
	c.inflight = time.Now()
	time.Sleep(500 * time.Millisecond)
	err := e.client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		c.err = err
		return c
	}
	c.apiDeleted = time.Now()
	time.Sleep(500 * time.Millisecond) // the server's informer hears of it

	if c.err = e.fleet.DeleteNode(ctx, name); c.err != nil {
		return c
	}
	time.Sleep(10 * time.Second)
	body, _, err := e.selfMetrics(ctx)
	if err != nil {
		c.err = err
		return c
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, `node="`+name+`"`) {
			c.linesWhileGone = append(c.linesWhileGone, l)
		}
	}
	if c.err = e.fleet.SetDelay(name, 0); c.err != nil {
		return c
	}
	c.newIP, c.err = e.fleet.AddNode(ctx, name)
	c.readded = time.Now()
	return c
}

// gapAccount says when a node was missing from the typed snapshots.
func gapAccount(api []apiSnapshot, node string) string {
	var missing []string
	for _, s := range api {
		if _, ok := s.nodes[node]; !ok && s.err == nil {
			missing = append(missing, clock(s.at))
		}
	}
	if len(missing) == 0 {
		return "listed in every snapshot"
	}
	return fmt.Sprintf("missing from %d snapshots (%s .. %s), for %v at most", len(missing), missing[0], missing[len(missing)-1], longestGap(api, node).Round(time.Second))
}

// longestGap is the longest time a node went missing from the typed
// snapshots: from the first snapshot without it to the next one with it
// (or the last snapshot).
func longestGap(api []apiSnapshot, node string) time.Duration {
	var longest time.Duration
	var since time.Time
	for _, s := range api {
		if s.err != nil {
			continue
		}
		if _, ok := s.nodes[node]; !ok {
			if since.IsZero() {
				since = s.at
			}
			longest = max(longest, s.at.Sub(since))
			continue
		}
		if !since.IsZero() {
			longest = max(longest, s.at.Sub(since))
		}
		since = time.Time{}
	}
	return longest
}

// listed keeps the snapshots that list node, with numbers in kubectl top.
func listed(api []apiSnapshot, top []topSnapshot, node string) ([]apiSnapshot, []topSnapshot) {
	var a []apiSnapshot
	var k []topSnapshot
	for _, s := range api {
		if _, ok := s.nodes[node]; ok {
			a = append(a, s)
		}
	}
	for _, s := range top {
		if r := s.nodes[node]; r != (topRow{}) && !r.unknown {
			k = append(k, s)
		}
	}
	return a, k
}

// webPods names the web Deployment's pods among the expected pods.
func webPods(pods map[string]expectation) []string {
	var out []string
	for p := range pods {
		if strings.HasPrefix(p, webName+"-") {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func hasReason(fs []failure, reason string) bool {
	return slices.ContainsFunc(fs, func(f failure) bool { return f.reason == reason })
}

// gauge finds the value of name{node="node"} in a /metrics text.
func gauge(body, name, node string) (float64, bool) {
	prefix := name + `{node="` + node + `"} `
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
