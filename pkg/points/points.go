// Package points holds the raw measurements that one kubelet scrape yields:
// cumulative CPU counters, memory working sets and, where the kubelet
// reports them, swap and ephemeral-storage usage, for a node and for the
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
	// HasSwap marks Point.Swap as present.
	HasSwap
	// HasEphemeralStorage marks Point.EphemeralStorage as present.
	HasEphemeralStorage
)

// Point is one raw measurement of a node or a container at one instant.
// It is 56 bytes and holds no pointers, so slices of points cost the garbage
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
	// Swap is the swap in use, valid when Has&HasSwap != 0 (the kubelet's
	// swapUsageBytes, or *_swap_usage_bytes). Unit: bytes.
	Swap uint64
	// EphemeralStorage is the local ephemeral storage in use, valid when
	// Has&HasEphemeralStorage != 0: for a container its writable layer
	// plus its logs (the summary's rootfs and logs usedBytes), for a node
	// its root filesystem (the summary's fs usedBytes). Unit: bytes.
	EphemeralStorage uint64
	// Has says which of the values were reported.
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

	// containers, in a batch filled with AddPod, is the one array that
	// holds every pod's Containers; Reset keeps it for the next scrape.
	containers []Container
}

// Reset empties b for a scrape of node that will add about pods pods and
// containers containers with AddPod. Its memory is kept: a batch reused
// for the same node every cycle allocates nothing. The caller must own b:
// whoever had it before (a Sink) has let go of it and of its slices.
func (b *Batch) Reset(node string, pods, containers int) {
	// Drop the old names, which the array would otherwise keep alive.
	clear(b.Pods)
	clear(b.containers)
	b.Node, b.NodePoint = node, Point{}
	if cap(b.Pods) < pods {
		b.Pods = make([]Pod, 0, pods)
	}
	b.Pods = b.Pods[:0]
	if cap(b.containers) < containers {
		b.containers = make([]Container, 0, containers)
	}
	b.containers = b.containers[:0]
}

// ContainersCap is the size of the batch's container array, for a pool
// to bound what it keeps.
func (b *Batch) ContainersCap() int { return cap(b.containers) }

// AddPod appends a pod whose Containers has room for n containers taken
// from the batch's own array; its containers are then appended to
// b.Pods[i].Containers (up to n; more would move them out of the array).
// It returns nothing: a pointer into b.Pods would not survive the next
// AddPod.
func (b *Batch) AddPod(namespace, name string, n int) {
	start := len(b.containers)
	if cap(b.containers)-start < n {
		// More than Reset was told: continue in a new array.
		b.containers = make([]Container, 0, max(n, 2*cap(b.containers)))
		start = 0
	}
	b.containers = b.containers[:start+n]
	b.Pods = append(b.Pods, Pod{Namespace: namespace, Name: name, Containers: b.containers[start : start : start+n]})
}
