package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	testclock "k8s.io/utils/clock/testing"
)

// restartNode is testNode's node 0 with two pods of two containers at
// 250m (pod p00's c0 with 64 MiB), known to the fleet as pods of its
// nodes, so RestartContainer finds them.
func restartNode(t *testing.T) (*Fleet, *node, *testclock.FakePassiveClock) {
	t.Helper()
	f, n := testNode(t, 0, 2, 64<<20)
	for k, p := range n.pods {
		f.pods[k] = p
	}
	return f, n, f.cfg.Clock.(*testclock.FakePassiveClock)
}

// cpuSince is the CPU a steady 250m uses from start to t, in nanoseconds,
// as the load model integrates it.
func cpuSince(start, t time.Time) uint64 {
	return 250 * uint64(t.Sub(start).Nanoseconds()) / 1000
}

// TestRestartContainer restarts p00's container c0 (once or twice, each
// 300 ms after a sample instant) and reads both endpoints with reference
// decoders (encoding/json into the kubelet's stats types, Prometheus' text
// parser): a sample taken after a restart shows c0 started at the restart
// (whole seconds in the summary, to the nanosecond in /metrics/resource)
// with its cumulative CPU from 0, its memory as before, c1 untouched, and
// the pod's CPU (its cgroup) counting on without a step back; a sample
// taken before the restart still shows the old container.
func TestRestartContainer(t *testing.T) {
	cases := []struct {
		name     string
		restarts int
		// after is when the endpoints are read, after the last restart.
		after   time.Duration
		wantNew bool
	}{
		{name: "the sample before the restart shows the old container", restarts: 1, after: 0},
		{name: "the next sample shows the new container from 0", restarts: 1, after: 700 * time.Millisecond, wantNew: true},
		{name: "a later sample", restarts: 1, after: 5*time.Second + 700*time.Millisecond, wantNew: true},
		{name: "a second restart starts from 0 again", restarts: 2, after: 700 * time.Millisecond, wantNew: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, n, clk := restartNode(t)
			p := n.pods["ns/p00"]
			firstStart := [2]time.Time{p.containers[0].cpu.start, p.containers[1].cpu.start}
			at0 := n.sampleTime(clk.Now())
			var restartedAt time.Time
			for k := range tc.restarts {
				clk.SetTime(at0.Add(time.Duration(k)*n.every + 300*time.Millisecond))
				got, err := f.RestartContainer(context.Background(), "ns", "p00", "c0")
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(clk.Now()) {
					t.Fatalf("restart %d started the container at %v, want now %v", k, got, clk.Now())
				}
				restartedAt = got
			}
			clk.SetTime(restartedAt.Add(tc.after))
			at := n.sampleTime(clk.Now())
			if tc.wantNew == at.Before(restartedAt) {
				t.Fatalf("case set-up: sample at %v against the restart at %v", at, restartedAt)
			}
			// What the kubelet should report: c0 of the latest life.
			wantStart, wantCPU := restartedAt, cpuSince(restartedAt, at)
			if !tc.wantNew {
				wantStart = firstStart[0]
				if tc.restarts == 1 {
					wantCPU = cpuSince(firstStart[0], at)
				}
			}
			// The pod's cgroup never restarts: 250m since each container
			// first started.
			wantPodCPU := cpuSince(firstStart[0], at) + cpuSince(firstStart[1], at)

			var sum statsapi.Summary
			if err := json.Unmarshal(get(t, f, n, "/stats/summary?only_cpu_and_memory=true"), &sum); err != nil {
				t.Fatal(err)
			}
			var ps *statsapi.PodStats
			for i := range sum.Pods {
				if sum.Pods[i].PodRef.Name == "p00" {
					ps = &sum.Pods[i]
				}
			}
			if ps == nil || len(ps.Containers) != 2 {
				t.Fatalf("summary pod p00: %+v", ps)
			}
			for _, c := range ps.Containers {
				start, cpu := firstStart[1], cpuSince(firstStart[1], at)
				if c.Name == "c0" {
					start, cpu = wantStart, wantCPU
				}
				if !c.StartTime.Time.Equal(start.Truncate(time.Second)) || *c.CPU.UsageCoreNanoSeconds != cpu || *c.CPU.UsageNanoCores != 250e6 {
					t.Errorf("summary %s: start %v, cpu %d ns at %d nanocores; want %v, %d, 250e6", c.Name, c.StartTime, *c.CPU.UsageCoreNanoSeconds, *c.CPU.UsageNanoCores, start.Truncate(time.Second), cpu)
				}
				if c.Name == "c0" && *c.Memory.WorkingSetBytes != 64<<20 {
					t.Errorf("summary c0 working set %d, want 64 MiB as before", *c.Memory.WorkingSetBytes)
				}
			}
			if got := *ps.CPU.UsageCoreNanoSeconds; absDiff(got, wantPodCPU) > 2 {
				t.Errorf("summary pod cpu %d ns, want %d (the pod's cgroup counts on)", got, wantPodCPU)
			}

			parser := expfmt.NewTextParser(model.LegacyValidation)
			mfs, err := parser.TextToMetricFamilies(bytes.NewReader(get(t, f, n, "/metrics/resource")))
			if err != nil {
				t.Fatal(err)
			}
			value := func(name, container string) float64 {
				t.Helper()
				for _, m := range mfs[name].GetMetric() {
					l := map[string]string{}
					for _, lp := range m.GetLabel() {
						l[lp.GetName()] = lp.GetValue()
					}
					if l["pod"] == "p00" && l["container"] == container {
						if m.GetCounter() != nil {
							return m.GetCounter().GetValue()
						}
						return m.GetGauge().GetValue()
					}
				}
				t.Fatalf("no %s for p00/%s", name, container)
				return 0
			}
			if got, want := value("container_start_time_seconds", "c0"), float64(wantStart.UnixNano())/1e9; got != want {
				t.Errorf("container_start_time_seconds c0 %v, want %v", got, want)
			}
			if got, want := value("container_start_time_seconds", "c1"), float64(firstStart[1].UnixNano())/1e9; got != want {
				t.Errorf("container_start_time_seconds c1 %v, want %v (not restarted)", got, want)
			}
			if got, want := value("container_cpu_usage_seconds_total", "c0"), float64(wantCPU)/1e9; got != want {
				t.Errorf("container_cpu_usage_seconds_total c0 %v, want %v", got, want)
			}
			if got, want := value("container_memory_working_set_bytes", "c0"), float64(64<<20); got != want {
				t.Errorf("container_memory_working_set_bytes c0 %v, want %v", got, want)
			}
			if got, want := value("pod_cpu_usage_seconds_total", ""), float64(wantPodCPU)/1e9; math.Abs(got-want) > 1e-8 {
				t.Errorf("pod_cpu_usage_seconds_total %v, want %v", got, want)
			}
		})
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestRestartContainerStatus: with a client, a restart writes what the
// kubelet writes of it (restartCount, the old container terminated in
// lastState, a new container ID running since the restart); unknown pods
// and containers are errors that name them.
func TestRestartContainerStatus(t *testing.T) {
	cases := []struct {
		name, pod, container string
		wantErr              string
		// wantRestarts by container after the restart.
		wantRestarts map[string]int32
	}{
		{name: "one container", pod: "p00", container: "c1", wantRestarts: map[string]int32{"c0": 0, "c1": 1}},
		{name: "no such pod", pod: "p09", container: "c0", wantErr: "no such pod"},
		{name: "no such container", pod: "p00", container: "c7", wantErr: "no such container"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, n, clk := restartNode(t)
			p := n.pods["ns/p00"]
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p00", Namespace: "ns", UID: types.UID(p.uid)},
				Spec:       corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "c0", Image: "i"}, {Name: "c1", Image: "i"}}},
			}
			pod.Status = RunningStatus(pod, "127.1.0.1", metav1.NewTime(p.start))
			client := fake.NewClientset(pod)
			f.cfg.Client = client
			clk.SetTime(clk.Now().Add(2 * time.Minute))
			at, err := f.RestartContainer(context.Background(), "ns", tc.pod, tc.container)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.pod) {
					t.Fatalf("error %v, want one naming %s and saying %q", err, tc.pod, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := client.CoreV1().Pods("ns").Get(context.Background(), "p00", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range got.Status.ContainerStatuses {
				want := tc.wantRestarts[st.Name]
				if st.RestartCount != want {
					t.Errorf("%s restartCount %d, want %d", st.Name, st.RestartCount, want)
				}
				if want == 0 {
					continue
				}
				term := st.LastTerminationState.Terminated
				// Unix seconds: the API keeps whole seconds, the fake all.
				if term == nil || term.FinishedAt.Unix() != at.Unix() || term.StartedAt.Unix() != p.containers[1].cpu.earlier.start.Unix() ||
					st.State.Running == nil || st.State.Running.StartedAt.Unix() != at.Unix() || st.ContainerID == term.ContainerID {
					t.Errorf("%s status %+v, want terminated at and running since %v under a new container ID", st.Name, st, at)
				}
			}
		})
	}
}
