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
	// Swap is the node's swap space in bytes; 0 is none (the kubelet then
	// reports 0 swapped for everything, as cAdvisor reads it, and the Node
	// object has no status.nodeInfo.swap). SystemSwap is what is swapped
	// out outside pods.
	Swap, SystemSwap int64
	// NoSwapStats: the kubelet reports no swap stats at all (no swap
	// object in the summary, no swap series), as a Windows node's does.
	NoSwapStats bool
	// Disk is the capacity of the node's root filesystem in bytes (the
	// kubelet's nodefs: its ephemeral-storage capacity); SystemDisk what
	// is used on it outside pods' ephemeral storage (images, logs of the
	// system). 0 is DefaultDisk.
	Disk, SystemDisk int64
}

// DefaultDisk is a node's root filesystem when its shape names none:
// 100 GiB, 20 GiB of it used outside pods.
const DefaultDisk, defaultSystemDisk = 100 << 30, 20 << 30

// disk returns Disk and SystemDisk, defaulted.
func (s NodeShape) disk() (capacity, system int64) {
	if s.Disk <= 0 {
		return DefaultDisk, defaultSystemDisk
	}
	return s.Disk, min(max(s.SystemDisk, 0), s.Disk)
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
// 400 GiB in use, the others 8 cores and 32 GiB with 512 MiB in use. Every
// fourth node (i = 3, 7, 11, ...) has swap (HasSwap).
func DefaultShape(i int) NodeShape {
	s := smallNode
	if i%3 == 2 {
		s = largeNodes[(i/3)%len(largeNodes)]
	}
	if HasSwap(i) {
		s.Swap, s.SystemSwap = s.Memory/4, 192<<20
	}
	return s
}

// HasSwap says whether DefaultShape gives node i swap: a quarter of its
// memory, 192 MiB of it swapped out by the system.
func HasSwap(i int) bool { return i%4 == 3 }

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
