package memlimit

import (
	"io/fs"
	"math"

	"k8s.io/klog/v2"
)

// DefaultFraction is the share of the cgroup limit given to the Go runtime.
// The runtime's limit is soft and covers only what Go allocates: the
// cgroup also charges the kernel's socket buffers of every kept kubelet
// connection, the page cache of the files read, and whatever the heap
// overshoots while a collection runs. A tenth is room for those, so the
// collector works hard before the kernel's OOM killer acts.
const DefaultFraction = 0.9

// Options says where Apply looks and what it changes. The zero value is not
// usable; tests give fakes.
type Options struct {
	// FS is the file system rooted at "/" holding /proc/self and the
	// cgroup mounts (os.DirFS("/") in production).
	FS fs.FS
	// Getenv reads the environment (os.Getenv in production).
	Getenv func(string) string
	// SetMemoryLimit sets the runtime's soft limit in bytes
	// (debug.SetMemoryLimit in production).
	SetMemoryLimit func(int64) int64
	// Fraction of the cgroup limit to set, in (0, 1]; 0 means DefaultFraction.
	Fraction float64
}

// Apply sets the Go runtime's memory limit to Fraction of the cgroup's
// memory limit unless the GOMEMLIMIT environment variable is set (the
// runtime has then read it itself) or no limit is found. It returns the
// limit it set in bytes, or 0 when it set none, and logs what it did once.
// A cgroup it cannot read is logged and leaves the runtime alone: the server
// runs as it would without a limit.
func Apply(o Options) int64 {
	if v := o.Getenv("GOMEMLIMIT"); v != "" {
		klog.InfoS("Go memory limit taken from GOMEMLIMIT", "GOMEMLIMIT", v)
		return 0
	}
	lim, err := Read(o.FS)
	if err != nil {
		klog.ErrorS(err, "Cannot read the container's memory limit; the Go runtime has none: set GOMEMLIMIT (for example to 90% of the container's limit) to have one")
		return 0
	}
	if lim.Bytes == 0 {
		klog.InfoS("No container memory limit found; the Go runtime has none", "cgroup", lim.Version)
		return 0
	}
	f := o.Fraction
	if f <= 0 || f > 1 {
		f = DefaultFraction
	}
	set := int64(math.Floor(float64(lim.Bytes) * f))
	o.SetMemoryLimit(set)
	klog.InfoS("Go memory limit set from the container's cgroup (GOMEMLIMIT overrides)",
		"limitBytes", set, "cgroupLimitBytes", lim.Bytes, "fraction", f, "file", lim.File)
	return set
}
