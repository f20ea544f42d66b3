package kubelet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// The subset of the kubelet's stats/v1alpha1 Summary we read. Every value
// is a pointer: the kubelet omits what it could not measure, and absent is
// not zero.
type summary struct {
	Node struct {
		StartTime *time.Time   `json:"startTime"`
		CPU       *cpuStats    `json:"cpu"`
		Memory    *memoryStats `json:"memory"`
	} `json:"node"`
	Pods []podStats `json:"pods"`
}

type podStats struct {
	PodRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"podRef"`
	Containers []containerStats `json:"containers"`
}

type containerStats struct {
	Name      string       `json:"name"`
	StartTime *time.Time   `json:"startTime"`
	CPU       *cpuStats    `json:"cpu"`
	Memory    *memoryStats `json:"memory"`
}

type cpuStats struct {
	Time                 *time.Time `json:"time"`
	UsageCoreNanoSeconds *uint64    `json:"usageCoreNanoSeconds"`
}

type memoryStats struct {
	Time            *time.Time `json:"time"`
	WorkingSetBytes *uint64    `json:"workingSetBytes"`
}

// DecodeSummary decodes a /stats/summary?only_cpu_and_memory=true body into
// the batch of node. now stands in for a sample time the kubelet left out.
// A malformed value fails the whole node; a pod without a name or namespace
// is skipped.
func DecodeSummary(r io.Reader, node string, now time.Time) (*points.Batch, error) {
	var s summary
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding the summary JSON: %w", err)
	}
	// Anything but white space after the object is a damaged body.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding the summary JSON: data after the top-level object")
	}
	b := &points.Batch{Node: node, Pods: make([]points.Pod, 0, len(s.Pods))}
	var err error
	if b.NodePoint, err = summaryPoint(s.Node.StartTime, s.Node.CPU, s.Node.Memory, now); err != nil {
		return nil, fmt.Errorf("node stats: %w", err)
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		if p.PodRef.Name == "" || p.PodRef.Namespace == "" {
			klog.V(4).InfoS("Skipping a pod without name or namespace in the summary", "node", klog.KRef("", node), "pod", p.PodRef.Name, "namespace", p.PodRef.Namespace)
			continue
		}
		pod := points.Pod{Namespace: p.PodRef.Namespace, Name: p.PodRef.Name, Containers: make([]points.Container, 0, len(p.Containers))}
		for j := range p.Containers {
			c := &p.Containers[j]
			if c.Name == "" {
				return nil, fmt.Errorf("pod %s/%s has a container without a name", pod.Namespace, pod.Name)
			}
			pt, err := summaryPoint(c.StartTime, c.CPU, c.Memory, now)
			if err != nil {
				return nil, fmt.Errorf("pod %s/%s container %s: %w", pod.Namespace, pod.Name, c.Name, err)
			}
			pod.Containers = append(pod.Containers, points.Container{Name: c.Name, Point: pt})
		}
		b.Pods = append(b.Pods, pod)
	}
	// A kubelet always reports its node; an answer with neither node nor
	// pod stats is not one, and taking it as "no pods" would drop every pod
	// of the node.
	if b.NodePoint.Has == 0 && len(b.Pods) == 0 {
		return nil, errors.New("the summary holds neither node nor pod stats")
	}
	return b, nil
}

// summaryPoint builds a point from summary stats. Its timestamp is the CPU
// sample's (rates are CPU's), else the memory sample's, else now.
func summaryPoint(start *time.Time, cpu *cpuStats, mem *memoryStats, now time.Time) (points.Point, error) {
	var p points.Point
	var err error
	if p.StartTime, err = unixNanos("startTime", start); err != nil {
		return p, err
	}
	if mem != nil && mem.WorkingSetBytes != nil {
		p.Memory = *mem.WorkingSetBytes
		p.Has |= points.HasMemory
		if p.Timestamp, err = unixNanos("memory.time", mem.Time); err != nil {
			return p, err
		}
	}
	if cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		p.CPU = *cpu.UsageCoreNanoSeconds
		p.Has |= points.HasCPU
		ts, err := unixNanos("cpu.time", cpu.Time)
		if err != nil {
			return p, err
		}
		if ts != 0 {
			p.Timestamp = ts
		}
	}
	if p.Timestamp == 0 {
		p.Timestamp = now.UnixNano()
	}
	return p, nil
}

// Timestamps outside these years are damage, not data, and would overflow
// nanoseconds since the epoch.
const minYear, maxYear = 1970, 2200

// unixNanos converts an optional time; nil or zero gives 0.
func unixNanos(field string, t *time.Time) (int64, error) {
	if t == nil || t.IsZero() {
		return 0, nil
	}
	if y := t.Year(); y < minYear || y > maxYear {
		return 0, fmt.Errorf("%s %s is out of range", field, t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}
