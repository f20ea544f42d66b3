package fleet

// NodeShape is a simulated node's hardware and the load of what runs on it
// outside its pods (the system daemons, the kubelet, the runtime, page
// cache that counts as working set). The Node object's capacity is
// Cores and Memory; its kubelet reports the pods' usage plus System*.
type NodeShape struct {
	// Cores is the node's CPU capacity in whole cores.
	Cores int64
	// Memory is the node's memory capacity in bytes.
	Memory int64
	// SystemMilliCPU is the CPU used outside pods, in millicores.
	SystemMilliCPU int64
	// SystemMemory is the working set outside pods, in bytes.
	SystemMemory int64
}

// evictionReserve is what a kubelet with default flags keeps out of
// allocatable memory: its hard eviction threshold memory.available<100Mi.
const evictionReserve = 100 << 20

// smallNode is two nodes in three: a common 8-core, 32 GiB machine.
var smallNode = NodeShape{Cores: 8, Memory: 32 << 30, SystemMilliCPU: 150, SystemMemory: 512 << 20}

// largeNodes are the machines every third node is, in turn: tens of cores,
// hundreds of GiB, tens to hundreds of GiB in use (databases, JVMs and
// page cache), whose working sets /metrics/resource prints in exponent form.
var largeNodes = []NodeShape{
	{Cores: 24, Memory: 192 << 30, SystemMilliCPU: 1200, SystemMemory: 40 << 30},
	{Cores: 32, Memory: 256 << 30, SystemMilliCPU: 2100, SystemMemory: 96 << 30},
	{Cores: 48, Memory: 384 << 30, SystemMilliCPU: 3300, SystemMemory: 180 << 30},
	{Cores: 64, Memory: 512 << 30, SystemMilliCPU: 4700, SystemMemory: 260 << 30},
	{Cores: 96, Memory: 768 << 30, SystemMilliCPU: 6400, SystemMemory: 400 << 30},
}

// DefaultShape is node i's shape when Config.Shape is nil: every third
// node (i = 2, 5, 8, ...) is a large machine of 24 to 96 cores with 40 to
// 400 GiB in use, the others 8 cores and 32 GiB with 512 MiB in use.
func DefaultShape(i int) NodeShape {
	if i%3 != 2 {
		return smallNode
	}
	return largeNodes[(i/3)%len(largeNodes)]
}

// IsLarge says whether DefaultShape makes node i a large machine, for
// callers that size its pods to match.
func IsLarge(i int) bool { return i%3 == 2 }

// NodeShape returns node i's shape: Config.Shape's, else DefaultShape's.
func (c Config) NodeShape(i int) NodeShape {
	if c.Shape != nil {
		return c.Shape(i)
	}
	return DefaultShape(i)
}
