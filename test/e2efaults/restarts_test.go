package e2efaults

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// Bounds on recovery. After the kube-apiserver is ready again: the
// informers relist (client-go backs off up to 30 s while it is down), then
// a cycle and a follow-up. After our server was killed: as test/e2e's
// TestRestartRecovers holds it, two resolutions (and 5 s to start the
// process), since a new server scrapes each node again 2 s after its first
// scrape ("rates within seconds", README) and hanging nodes must not
// delay healthy ones.
const (
	apiserverRecovery = 90 * time.Second
	restartRecovery   = 2*resolution + 5*time.Second
)

// apiserverRestarted stops the kube-apiserver and, while it is down,
// deletes a pod and a Node from etcd (so no watch event can tell of them
// but a relist): afterwards neither may be served, a pod created after the
// restart must be (the pod informer watches again), every healthy node
// with its pods must be back and the HPA must read its metric again.
func (e *env) apiserverRestarted(t *testing.T, obs *observer) {
	ctx := context.Background()
	r := e.roles
	gonePod := "load-" + r.healthy[0]
	began := time.Now()
	err := e.cluster.RestartAPIServer(ctx, 2*time.Minute, func() error {
		return deleteFromEtcd(ctx, e.cluster.EtcdURL,
			"/registry/pods/"+namespace+"/"+gonePod,
			"/registry/minions/"+r.doomed)
	})
	must(t, err)
	up := time.Now()
	t.Logf("kube-apiserver stopped, %s and node %s deleted in etcd, ready again %v after the stop",
		gonePod, r.doomed, up.Sub(began).Round(time.Second))

	late := latePod(r.healthy[1])
	must(t, poll(ctx, 30*time.Second, func() error {
		_, err := e.client.CoreV1().Pods(namespace).Create(ctx, late, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // an earlier try that timed out made it
		}
		return err
	}))
	healthy := slices.DeleteFunc(slices.Clone(r.healthy), func(n string) bool { return n == r.doomed })
	pods := append(loadPods(slices.DeleteFunc(slices.Clone(healthy), func(n string) bool { return "load-"+n == gonePod })...), late.Name)
	recovered, err := e.waitRecovered(ctx, 2*apiserverRecovery, healthy, pods, []string{r.doomed}, []string{gonePod})
	if err != nil {
		t.Fatalf("%v after the kube-apiserver was ready again: %v", time.Since(up).Round(time.Second), err)
	}
	if took := recovered.Sub(up); took > apiserverRecovery {
		t.Errorf("recovered only %v after the kube-apiserver was ready, want within %v", took.Round(time.Second), apiserverRecovery)
	}
	t.Logf("every healthy node and pod served, %s and %s gone, %s served: %v after the kube-apiserver was ready",
		r.doomed, gonePod, late.Name, recovered.Sub(up).Round(time.Second))
	// The fleet re-bases every pod's CPU counter at the moment its
	// informer relists (fleet.syncPod calls counter.set(now) on every
	// update), while samples lie on a 1 s grid before that moment: up to
	// one second of CPU moves from one window into the next, 1/15 = 6.7%
	// of a 15 s window. The simulator's error, not the server's; allowed
	// here only.
	e.holds(t, obs, recovered, resolution+5*time.Second, healthy, pods, []string{r.doomed}, []string{gonePod}, resolution*3/2, 7)
	e.hpaBack(t, up)
}

// serverKilled kills our server with SIGKILL while kubelet requests are in
// flight, starts it again, and bounds the time until every healthy node
// and pod is served again.
func (e *env) serverKilled(t *testing.T, obs *observer) {
	ctx := context.Background()
	r := e.roles
	healthy := slices.DeleteFunc(slices.Clone(r.healthy), func(n string) bool { return n == r.doomed })
	pods := append(loadPods(healthy[1:]...), "late")

	// Kill as soon as a hanging node is asked: that request is in flight
	// for as long as the server lives, so the kill lands mid-cycle.
	hangingHits := func() (n int) {
		for _, h := range r.hanging {
			n += e.fleet.Hits(h, "/metrics/resource") + e.fleet.Hits(h, "/stats/summary")
		}
		return n
	}
	e.fleet.StartRecording()
	before := hangingHits()
	for deadline := time.Now().Add(2 * resolution); hangingHits() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no request to a hanging node in %v", 2*resolution)
		}
	}
	pid := e.cluster.MetricsServerPID()
	if pid == 0 {
		t.Fatal("our server is not running")
	}
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	killed := time.Now()
	e.cluster.StopMetricsServer() // reaps it
	must(t, e.cluster.KeepMetricsServerLog())
	if _, err := e.cluster.StartMetricsServer(ctx, e.server); err != nil {
		t.Fatal(err)
	}
	available := time.Now()
	// Waits past the bound, to say how late it was.
	recovered, err := e.waitRecovered(ctx, 2*time.Minute, healthy, pods, nil, nil)
	requests := e.fleet.StopRecording()
	if err != nil {
		t.Fatalf("%v after the kill: %v", time.Since(killed).Round(time.Second), err)
	}
	if took := recovered.Sub(killed); took > restartRecovery {
		t.Errorf("every healthy node and pod served only %v after the kill, want within %v", took.Round(time.Second), restartRecovery)
	}
	inFlight := 0
	for _, q := range requests {
		if q.Arrived.Before(killed) && !q.Done.Before(killed) {
			inFlight++
		}
	}
	t.Logf("killed with %d kubelet requests in flight; APIServices Available %v after the kill; every healthy node and pod served %v after the kill",
		inFlight, available.Sub(killed).Round(time.Second), recovered.Sub(killed).Round(time.Second))
	if inFlight == 0 {
		t.Errorf("no kubelet request was in flight at the kill: not mid-cycle")
	}
	// A new server's regular cycles begin a resolution after its
	// follow-up cycle ends, which waits out the hanging nodes' timeout:
	// its points may be up to staleness old then, not 1.5 resolutions.
	e.holds(t, obs, recovered, 2*resolution, healthy, pods, nil, nil, staleness, 0)
	e.hpaBack(t, killed)
}

// waitRecovered polls the typed API and kubectl top until every node and
// pod of nodes and pods is served and none of goneNodes and gonePods is,
// and returns when.
func (e *env) waitRecovered(ctx context.Context, limit time.Duration, nodes, pods, goneNodes, gonePods []string) (time.Time, error) {
	err := poll(ctx, limit, func() error {
		s := e.readAPI(ctx)
		if s.err != nil {
			return s.err
		}
		k := e.readTop(ctx)
		if k.err != nil {
			return k.err
		}
		for _, n := range nodes {
			if _, ok := s.nodes[n]; !ok {
				return fmt.Errorf("node %s not served", n)
			}
			if row := k.nodes[n]; row == (topRow{}) || row.unknown {
				return fmt.Errorf("kubectl top node: %s missing or <unknown>", n)
			}
		}
		for _, p := range pods {
			if _, ok := s.pods[p]; !ok {
				return fmt.Errorf("pod %s not served", p)
			}
			if _, ok := k.pods[p]; !ok {
				return fmt.Errorf("kubectl top pod: %s missing", p)
			}
		}
		for _, n := range goneNodes {
			if _, ok := s.nodes[n]; ok {
				return fmt.Errorf("deleted node %s still served", n)
			}
		}
		for _, p := range gonePods {
			if _, ok := s.pods[p]; ok {
				return fmt.Errorf("deleted pod %s still served", p)
			}
		}
		return nil
	})
	return time.Now(), err
}

// holds judges the snapshots taken for d after a recovery: nothing
// healthy missing or wrong (CPU within cpuPercent, 0 meaning 5) or older
// than maxAge, nothing deleted back.
func (e *env) holds(t *testing.T, obs *observer, from time.Time, d time.Duration, nodes, pods, goneNodes, gonePods []string, maxAge time.Duration, cpuPercent int64) {
	t.Helper()
	time.Sleep(time.Until(from.Add(d)))
	api, top, _ := obs.between(from, time.Now())
	ne, pe, err := e.expectations(context.Background())
	must(t, err)
	j := judge{t: t, nodes: ne, pods: pe, cpuPercent: cpuPercent}
	worst := j.served("after the recovery", api, top, nodes, append(pods, webPods(pe)...), maxAge)
	j.absent("deleted, after the recovery", api, top, goneNodes, gonePods)
	t.Logf("%d healthy nodes and %d pods in all %d typed and %d kubectl top snapshots of the next %v, oldest timestamp %v",
		len(nodes), len(pods), len(api), len(top), d, worst.Round(time.Second))
	if len(top) > 0 {
		t.Log(topLine(top[len(top)-1]))
	}
}

// hpaBack waits until the HPA reads its metric again and says how long it
// went without.
func (e *env) hpaBack(t *testing.T, since time.Time) {
	t.Helper()
	ctx := context.Background()
	var last hpaSample
	err := poll(ctx, 90*time.Second, func() error {
		last = e.readHPA(ctx)
		if !last.active || last.utilization < webUtilization-3 || last.utilization > webUtilization+3 {
			return fmt.Errorf("HPA active %v, utilization %d%%: %s", last.active, last.utilization, last.why)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HPA ScalingActive with %d%% CPU utilization %v after the fault", last.utilization, time.Since(since).Round(time.Second))
}

// latePod is created after the kube-apiserver restart.
func latePod(node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: namespace,
			Annotations: map[string]string{fleet.UsageAnnotation: "cpu=700m,memory=3Gi"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "late", Image: "registry.invalid/late:1"}}},
	}
}

// deleteFromEtcd deletes keys behind the kube-apiserver's back, as
// happens to objects deleted while a client's watch is broken.
func deleteFromEtcd(ctx context.Context, endpoint string, keys ...string) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("connecting to etcd at %s: %w", endpoint, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, k := range keys {
		resp, err := c.Delete(ctx, k)
		if err != nil {
			return fmt.Errorf("deleting %s from etcd: %w", k, err)
		}
		if resp.Deleted != 1 {
			return fmt.Errorf("deleting %s from etcd: %d keys deleted, want 1", k, resp.Deleted)
		}
	}
	return nil
}
