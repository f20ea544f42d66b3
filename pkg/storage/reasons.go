package storage

import (
	"fmt"
	"math"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// Why a pod is or is not served: the Code of a PodReason.
const (
	// PodServed: every container has usage; the pod is served.
	PodServed = "Served"
	// PodNotReported: no kubelet's last batch listed the pod (its node
	// was not scraped yet, fails, is pruned or not selected; or the pod is
	// not on any node), or another node holds it.
	PodNotReported = "NotReported"
	// PodNoContainers: the kubelet listed the pod without containers.
	PodNoContainers = "NoContainers"
	// PodOnePoint: a container has one sample so far (new, restarted, or
	// its kubelet's clock stepped); a rate needs two.
	PodOnePoint = "OnePoint"
	// PodMissingValues: a container's latest sample lacks CPU or memory,
	// or the sample before it lacks CPU.
	PodMissingValues = "MissingValues"
	// PodImplausible: a container's two samples give no believable rate
	// (no time between them, a counter that went down, more than a
	// million cores, or a working set past 2^63 bytes).
	PodImplausible = "ImplausibleRate"
	// PodZeroUsage: a container reports zero cumulative CPU or a zero
	// working set and the store drops such pods (DropZeroUsagePods).
	PodZeroUsage = "ZeroUsage"
)

// PodReason says whether the store serves a pod and, when not, why.
type PodReason struct {
	// Code is one of the Pod* constants above.
	Code string
	// Node is the node whose last batch listed the pod; "" when none did.
	Node string
	// Container names the first container that keeps the pod from being
	// served; "" when the reason is not a container's.
	Container string
	// Message says it in words, naming the node and container.
	Message string
}

// PodReason returns why the pod namespace/name is or is not served by
// GetPodUsage, from the points held now. It changes nothing. Whether the
// pod runs (the pod cache's job) is not its concern.
func (s *Store) PodReason(namespace, name string) PodReason {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.pods[podKey{namespace, name}]
	if !ok {
		return PodReason{Code: PodNotReported, Message: "no kubelet listed the pod in its last successful scrape: its node has not been scraped yet, " +
			"or its scrapes fail (see the node's status), or the node is not selected (--node-selector), or another node claims the pod"}
	}
	r := PodReason{Node: p.node}
	if len(p.containers) == 0 {
		r.Code = PodNoContainers
		r.Message = fmt.Sprintf("the kubelet of node %s lists the pod without containers", p.node)
		return r
	}
	for i := range p.containers {
		c := &p.containers[i]
		code, why := c.series.why(s.epoch)
		if code == "" && s.opts.DropZeroUsagePods && (c.series.cpu == 0 || c.series.memory == 0) {
			code, why = PodZeroUsage, fmt.Sprintf("reports %d ns of CPU time and a working set of %d bytes; pods with a zero are dropped (--zero-usage-pods=drop)",
				c.series.cpu, c.series.memory)
		}
		if code != "" {
			r.Code, r.Container = code, c.name
			r.Message = fmt.Sprintf("container %s (node %s) %s", c.name, p.node, why)
			return r
		}
	}
	r.Code = PodServed
	r.Message = fmt.Sprintf("served from the kubelet of node %s", p.node)
	return r
}

// why returns the code and the words of why usage has nothing to serve,
// ("", "") when it has. It follows usage's tests in usage's order.
func (s *series) why(epoch int64) (code, words string) {
	if s.time == 0 {
		return PodOnePoint, "has no sample yet"
	}
	if s.has&points.HasCPU == 0 || s.has&points.HasMemory == 0 {
		return PodMissingValues, fmt.Sprintf("has no %s in its latest sample (%s): the kubelet did not report it", missing(s.has),
			time.Unix(0, s.time).UTC().Format(time.RFC3339))
	}
	if s.prevTime == 0 {
		return PodOnePoint, fmt.Sprintf("has one sample (%s) since it started, restarted or its kubelet's clock stepped; a rate needs two, so it is served after the next scrape",
			time.Unix(0, epoch+int64(s.arrived)*int64(time.Second)).UTC().Format(time.RFC3339))
	}
	if s.prevHas&points.HasCPU == 0 {
		return PodMissingValues, "had no cpu in its previous sample; it is served after the next scrape that reports it"
	}
	window := s.time - s.prevTime
	switch {
	case window <= 0 || s.cpu < s.prevCPU:
		return PodImplausible, fmt.Sprintf("has two samples that give no rate (%v apart, cpu counter %d then %d)", time.Duration(window), s.prevCPU, s.cpu)
	case float64(s.cpu-s.prevCPU)/float64(window)*1e9 > maxNanoCores:
		return PodImplausible, fmt.Sprintf("has a cpu rate of over a million cores (counter %d then %d in %v): damaged counters are not served", s.prevCPU, s.cpu, time.Duration(window))
	case s.memory > math.MaxInt64:
		return PodImplausible, fmt.Sprintf("has a working set of %d bytes, past what the API can carry", s.memory)
	}
	return "", ""
}

// missing names the values h lacks.
func missing(h points.Has) string {
	switch {
	case h&points.HasCPU == 0 && h&points.HasMemory == 0:
		return "cpu and no memory"
	case h&points.HasCPU == 0:
		return "cpu"
	}
	return "memory"
}
