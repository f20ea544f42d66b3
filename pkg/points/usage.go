package points

// Usage is what the API serves for one series: the CPU rate between two
// samples, the latest memory working set and, when the kubelet reported
// them, the latest swap and ephemeral-storage usage.
type Usage struct {
	// Timestamp is the later sample's time. Unit: Unix nanoseconds.
	Timestamp int64
	// Window is the time between the two samples. Unit: nanoseconds.
	Window int64
	// NanoCores is the CPU rate. Unit: nanocores (1e-9 CPU seconds a second).
	NanoCores uint64
	// Memory is the latest working set. Unit: bytes.
	Memory uint64
	// Swap and EphemeralStorage are the latest swap and ephemeral-storage
	// usage, each valid only when Has says so. Unit: bytes.
	Swap, EphemeralStorage uint64
	// Has says which of Swap and EphemeralStorage are served (HasSwap,
	// HasEphemeralStorage); CPU and memory always are.
	Has Has
}

// ContainerUsage is one container's usage.
type ContainerUsage struct {
	Name string
	Usage
}

// PodUsage is the usage of one pod whose every container has a rate.
type PodUsage struct {
	// Index is the pod's position in the request it answers.
	Index int
	// Timestamp and Window are those of the container with the oldest
	// sample, so the pod's figures are no fresher than it says.
	Timestamp, Window int64
	Containers        []ContainerUsage
}
