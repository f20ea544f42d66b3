package points

// Usage is what the API serves of one container: the CPU rate between
// two samples, the latest memory working set and, when the kubelet
// reported them, the latest swap and ephemeral-storage usage. Its time
// and window are its pod's (PodUsage): a container's own are not served,
// and leaving them out keeps a list of 300,000 containers 4.8 MB
// smaller. It is 40 bytes.
type Usage struct {
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
