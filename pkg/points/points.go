// Package points holds the raw measurements that one kubelet scrape yields:
// cumulative CPU counters and memory working sets for a node and for the
// containers of the pods bound to it.
//
// It is the only vocabulary shared by the kubelet decoders (which produce
// batches), the scraper (which moves them) and the storage (which turns pairs
// of points into rates). It knows nothing about HTTP, Kubernetes API objects
// or how rates are computed.
package points

// Has says which values of a Point were present in the kubelet response.
// Absent is not zero: kubelets omit a value they could not read.
type Has uint8

const (
	// HasCPU marks Point.CPU as present.
	HasCPU Has = 1 << iota
	// HasMemory marks Point.Memory as present.
	HasMemory
)

// Point is one raw measurement of a node or a container at one instant.
// It is 40 bytes and holds no pointers, so slices of points cost the garbage
// collector nothing to scan.
type Point struct {
	// Timestamp is when the kubelet took the sample.
	// Unit: nanoseconds since the Unix epoch. Never zero in a decoded point.
	Timestamp int64
	// StartTime is when the container (or, for a node, the kubelet's view of
	// the node) started; 0 when the kubelet did not say.
	// Unit: nanoseconds since the Unix epoch.
	StartTime int64
	// CPU is the cumulative CPU time used since StartTime, valid when
	// Has&HasCPU != 0. Unit: nanoseconds of CPU time (nanocore-seconds).
	CPU uint64
	// Memory is the working set, valid when Has&HasMemory != 0. Unit: bytes.
	Memory uint64
	// Has says which of CPU and Memory were reported.
	Has Has
}

// Container is the point of one container of a pod.
type Container struct {
	Name string
	Point
}

// Pod is every container point the kubelet reported for one pod.
type Pod struct {
	Namespace string
	Name      string
	// Containers holds one entry per container name, in kubelet order.
	Containers []Container
}

// Batch is the complete result of scraping one node's kubelet once.
// A batch replaces everything previously known about that node's pods:
// a pod absent from the batch is no longer on the node.
type Batch struct {
	// Node is the name of the Node object that was scraped.
	Node string
	// NodePoint is the node-level measurement; NodePoint.Has == 0 when the
	// kubelet reported none.
	NodePoint Point
	// Pods holds the pods the kubelet reported, in kubelet order.
	Pods []Pod
}
