package fleet

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHostStatsReadsThisMachine reads the real root cgroup: CPU must grow
// and the working set must be a plausible fraction of this machine.
func TestHostStatsReadsThisMachine(t *testing.T) {
	h, err := NewHostStats()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	var cpu1, mem uint64
	var at1 time.Time
	deadline := time.Now().Add(20 * time.Second)
	for {
		cpu1, mem, at1, err = h.Read()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if cpu1 == 0 || mem < 16<<20 || mem > 1<<40 {
		t.Errorf("root cgroup: cpu %d ns, working set %d bytes: not a running machine", cpu1, mem)
	}
	// Burn a little CPU, then the counter must have moved on.
	end := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(end) {
	}
	var cpu2 uint64
	var at2 time.Time
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cpu2, _, at2, err = h.Read(); err == nil && at2.After(at1) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !at2.After(at1) || cpu2 <= cpu1 {
		t.Errorf("no newer sample with more CPU: %v %d then %v %d", at1, cpu1, at2, cpu2)
	}
}

// TestHostMachineIsThisMachine checks the host node's capacity against
// /proc: the logical CPUs of /proc/cpuinfo and MemTotal of /proc/meminfo,
// as a kubelet's cAdvisor reads them (cgroup v1 or v2 alike).
func TestHostMachineIsThisMachine(t *testing.T) {
	h, err := NewHostStats()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	cores, memory, err := h.Machine()
	if err != nil {
		t.Fatal(err)
	}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	wantCores := 0
	for l := range strings.Lines(string(cpuinfo)) {
		if strings.HasPrefix(l, "processor") {
			wantCores++
		}
	}
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var wantMem uint64
	for l := range strings.Lines(string(meminfo)) {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			wantMem = kb << 10
		}
	}
	if cores != wantCores || memory != wantMem {
		t.Errorf("cAdvisor: %d cores, %d bytes; /proc: %d cores, %d bytes", cores, memory, wantCores, wantMem)
	}
}
