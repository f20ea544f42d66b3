//go:build realnode

package realnode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRestartedContainerServedHonestly restarts a container that burns
// 300m (it exits once after 45 s and the kubelet starts it again) and reads
// PodMetrics every second across the restart: once served, the pod is
// never unserved for longer than one resolution and a sample's age, its
// first value after the restart is about 300m (the restarted container's
// counter starts from zero: a rate taken across the restart as a plain
// difference would be negative or tiny) and no value exceeds the
// container's 500m limit.
func TestRestartedContainerServedHonestly(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	installComponents(ctx, t)

	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: restarts, namespace: default}
spec:
  nodeName: %[1]s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: app
    image: %[2]s
    imagePullPolicy: Never
    args: ["-cpu-millis=300", "-exit-once=/state/ran", "-exit-after=45s", "-exit-code=1"]
    resources:
      requests: {cpu: 100m, memory: 16Mi}
      limits: {cpu: 500m, memory: 32Mi}
    volumeMounts: [{name: state, mountPath: /state}]
`, NodeName, WorkloadImage)
	if _, err := kubectlIn(ctx, pod, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = kubectl(context.Background(), "delete", "pod", "restarts", "-n", "default", "--wait=false")
	}()
	if err := waitPodsRunning(ctx, "default", "restarts"); err != nil {
		t.Fatal(err)
	}

	type sample struct {
		at     time.Time
		served bool
		milli  int64
	}
	var samples []sample
	var restartedAt time.Time
	// Bounded: at most 150 one-second reads.
	for i := 0; i < 150; i++ {
		s := sample{at: time.Now()}
		if ms, err := getMetrics(ctx, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/restarts"); err == nil && len(ms) == 1 && len(ms[0].Containers) == 1 {
			cpu := ms[0].Containers[0].Usage["cpu"]
			s.served, s.milli = true, cpu.MilliValue()
		}
		samples = append(samples, s)
		if restartedAt.IsZero() {
			out, err := kubectl(ctx, "get", "pod", "restarts", "-n", "default", "-o",
				`jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}`)
			if err == nil {
				f := strings.Fields(out)
				if len(f) == 2 && f[0] == "1" {
					if restartedAt, err = time.Parse(time.RFC3339, f[1]); err != nil {
						t.Fatal(err)
					}
					t.Logf("the container restarted at %s", restartedAt.Format("15:04:05"))
				}
			}
		}
		if !restartedAt.IsZero() && time.Since(restartedAt) > 50*time.Second {
			break
		}
		time.Sleep(time.Second)
	}
	if restartedAt.IsZero() {
		t.Fatal("the container did not restart in 150 s")
	}
	// Once served, the longest run of reads that did not find the pod,
	// and the first value read after the restart.
	var line []string
	var first, gapStart time.Time
	var longest time.Duration
	after := int64(-1)
	for _, s := range samples {
		mark := "-"
		switch {
		case s.served:
			mark = fmt.Sprintf("%dm", s.milli)
			if s.milli > 500 {
				t.Errorf("at %s the pod is served at %dm, above its 500m limit", s.at.Format("15:04:05"), s.milli)
			}
			if first.IsZero() {
				first = s.at
			}
			if !gapStart.IsZero() {
				longest = max(longest, s.at.Sub(gapStart))
				gapStart = time.Time{}
			}
			// startedAt is in whole seconds: a second's margin.
			if after < 0 && s.at.After(restartedAt.Add(time.Second)) {
				after = s.milli
			}
		case !first.IsZero() && gapStart.IsZero():
			gapStart = s.at
		}
		line = append(line, mark)
	}
	t.Logf("PodMetrics each second (- not served): %s", strings.Join(line, " "))
	if !gapStart.IsZero() {
		t.Fatalf("not served since %s (the container restarted at %s)", gapStart.Format("15:04:05"), restartedAt.Format("15:04:05"))
	}
	// The server scrapes every 15 s and a kubelet's sample may be 10 s old.
	if longest > 27*time.Second {
		t.Errorf("the pod went unserved for %s across the restart, want at most one resolution and a sample's age (27 s)", longest.Round(time.Second))
	}
	if after < 200 || after > 400 {
		t.Errorf("first value read after the restart: %dm, want about 300m (a rate across the restart must not be a difference of two counters)", after)
	}
	t.Logf("across the restart: longest gap %s, first value after it %dm", longest.Round(time.Second), after)
}
