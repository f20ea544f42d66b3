package fleet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// RestartContainer restarts container of pod namespace/name as the
// runtime does after the container exits: from now (the fleet's clock, to
// the nanosecond) the kubelet reports a new container, whose cumulative
// CPU starts again from 0 and whose start time is now, in both
// endpoints (/stats/summary cpu.usageCoreNanoSeconds and startTime,
// /metrics/resource container_cpu_usage_seconds_total and
// container_start_time_seconds); its load goes on as the pod's usage
// annotation says. Samples taken before now still show the old container.
// The pod's own CPU (the pod's cgroup) and the node's keep counting what
// the old container used, as cgroups do. When the fleet has a client it
// then writes the container's status as the kubelet does: restartCount
// one more, the old container terminated (exit code 1, reason Error) in
// lastState, a new container ID running since now. The pod stays Ready
// (a kubelet without a readiness probe may or may not report the short
// gap).
//
// It returns the new container's start time.
func (f *Fleet) RestartContainer(ctx context.Context, namespace, name, containerName string) (time.Time, error) {
	key := namespace + "/" + name
	f.mu.Lock()
	p, ok := f.pods[key]
	f.mu.Unlock()
	if !ok {
		return time.Time{}, fmt.Errorf("restarting %s of pod %s: no such pod on the fleet's nodes", containerName, key)
	}
	var c *counter
	for _, pc := range p.containers {
		if pc.name == containerName {
			c = pc.cpu
		}
	}
	if c == nil {
		return time.Time{}, fmt.Errorf("restarting %s of pod %s: the pod has no such container", containerName, key)
	}
	now := f.cfg.Clock.Now()
	was, err := c.restart(now)
	if err != nil {
		return time.Time{}, fmt.Errorf("restarting %s of pod %s: %w", containerName, key, err)
	}
	if n, ok := f.byName[p.node]; ok {
		n.mu.Lock()
		n.cached = [2]cachedSummary{}
		n.mu.Unlock()
	}
	if f.cfg.Client == nil {
		return now, nil
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := f.cfg.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if string(pod.UID) != p.uid {
			return fmt.Errorf("pod %s is now another pod (uid %s, not %s)", key, pod.UID, p.uid)
		}
		for i := range pod.Status.ContainerStatuses {
			st := &pod.Status.ContainerStatuses[i]
			if st.Name != containerName {
				continue
			}
			st.RestartCount++
			st.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: metav1.NewTime(was), FinishedAt: metav1.NewTime(now), ContainerID: st.ContainerID,
			}}
			st.ContainerID = fmt.Sprintf("simulated://%s-%s-%d", p.uid, containerName, st.RestartCount)
			st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}}
		}
		_, err = f.cfg.Client.CoreV1().Pods(namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return now, fmt.Errorf("restarting %s of pod %s: writing its status: %w", containerName, key, err)
	}
	return now, nil
}
