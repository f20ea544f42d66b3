package fleet

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/cadvisor/lib/cache/memory"
	cadvisorcontainer "github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/manager"
	info "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
)

// HostStats reads this machine's real CPU and memory with cAdvisor, the
// library the kubelet itself uses (cgroup v1 and v2 alike).
type HostStats struct {
	m manager.Manager
}

// NewHostStats starts a cAdvisor manager that watches the root cgroup.
func NewHostStats() (*HostStats, error) {
	interval := 5 * time.Second
	allowDynamic := false
	m, err := manager.New(memory.New(2*time.Minute, nil), sysfs.NewRealSysFs(),
		manager.HousekeepingConfig{Interval: &interval, AllowDynamic: &allowDynamic, DisableContainerDiscovery: true},
		cadvisorcontainer.MetricSet{cadvisorcontainer.CpuUsageMetrics: struct{}{}, cadvisorcontainer.MemoryUsageMetrics: struct{}{}},
		nil, nil, "", 0)
	if err != nil {
		return nil, fmt.Errorf("starting cAdvisor: %w", err)
	}
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("starting cAdvisor: %w", err)
	}
	return &HostStats{m: m}, nil
}

// Read returns the latest sample of the root cgroup: cumulative CPU in
// nanoseconds and the working set in bytes (usage less inactive file
// pages, as the kubelet reports it).
func (h *HostStats) Read() (cpu uint64, workingSet uint64, at time.Time, err error) {
	maxAge := time.Duration(0)
	infos, err := h.m.GetContainerInfoV2("/", info.RequestOptions{IdType: "name", Count: 1, MaxAge: &maxAge})
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	ci, ok := infos["/"]
	if !ok || len(ci.Stats) == 0 {
		return 0, 0, time.Time{}, errors.New("cAdvisor has no stats for / yet")
	}
	s := ci.Stats[len(ci.Stats)-1]
	if s.Cpu == nil || s.Memory == nil {
		return 0, 0, time.Time{}, errors.New("cAdvisor stats for / lack CPU or memory")
	}
	return s.Cpu.Usage.Total, s.Memory.WorkingSet, s.Timestamp, nil
}

// Machine returns this machine's capacity as cAdvisor reads it and a
// kubelet reports it: logical CPUs and memory in bytes (cgroup v1 or v2
// alike: both come from /proc and sysfs, not from a cgroup).
func (h *HostStats) Machine() (cores int, memory uint64, err error) {
	mi, err := h.m.GetMachineInfo()
	if err != nil {
		return 0, 0, fmt.Errorf("reading this machine's capacity with cAdvisor: %w", err)
	}
	if mi.NumCores <= 0 || mi.MemoryCapacity == 0 {
		return 0, 0, fmt.Errorf("cAdvisor reads %d cores and %d bytes of memory: not a machine; check /proc/cpuinfo and /proc/meminfo", mi.NumCores, mi.MemoryCapacity)
	}
	return mi.NumCores, mi.MemoryCapacity, nil
}

// Stop ends the cAdvisor manager.
func (h *HostStats) Stop() { _ = h.m.Stop() }
