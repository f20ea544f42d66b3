package memlimit

import (
	"io/fs"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20

	// The mountinfo of a cgroup v1 host with the unified hierarchy beside
	// it (what this project's machines run), and of a pure v2 host.
	hybridMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	v2Mounts = `25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	podSlice  = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d4c.slice"
	container = podSlice + "/cri-containerd-7f3a.scope"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    Limit
		wantErr string
	}{{
		name: "v1 hybrid host, limit on the process's own cgroup",
		files: fstest.MapFS{
			"proc/self/cgroup":                                             file("9:name=systemd:/\n4:memory:/process_api/18365\n1:cpu:/\n0::/\n"),
			"proc/self/mountinfo":                                          file(hybridMounts),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                   file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/process_api/18365/memory.limit_in_bytes": file("4294967296\n"),
		},
		want: Limit{Bytes: 4 * gib, File: "/sys/fs/cgroup/memory/process_api/18365/memory.limit_in_bytes", Version: "v1"},
	}, {
		name: "v1 unlimited at every level (this machine)",
		files: fstest.MapFS{
			"proc/self/cgroup":                                             file("4:memory:/process_api/18365\n0::/\n"),
			"proc/self/mountinfo":                                          file(hybridMounts),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                   file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":       file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/process_api/18365/memory.limit_in_bytes": file("9223372036854771712\n"),
		},
		want: Limit{Version: "v1"},
	}, {
		name: "v1 unlimited written with 64 KiB pages",
		files: fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"proc/self/mountinfo":                        file(hybridMounts),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854710272\n"),
		},
		want: Limit{Version: "v1"},
	}, {
		name: "v1 nested: the pod's cgroup limits, the container's does not",
		files: fstest.MapFS{
			"proc/self/cgroup":    file("4:memory,hugetlb:/kubepods/burstable/pod0d4c/7f3a\n"),
			"proc/self/mountinfo": file(hybridMounts),
			"sys/fs/cgroup/memory/kubepods/memory.limit_in_bytes":                        file("201863462912\n"),
			"sys/fs/cgroup/memory/kubepods/burstable/memory.limit_in_bytes":              file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/kubepods/burstable/pod0d4c/memory.limit_in_bytes":      file("1073741824\n"),
			"sys/fs/cgroup/memory/kubepods/burstable/pod0d4c/7f3a/memory.limit_in_bytes": file("9223372036854771712\n"),
		},
		want: Limit{Bytes: gib, File: "/sys/fs/cgroup/memory/kubepods/burstable/pod0d4c/memory.limit_in_bytes", Version: "v1"},
	}, {
		name: "v1 bind mount of the container's own cgroup (docker without a cgroup namespace)",
		files: fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/docker/7f3a\n"),
			"proc/self/mountinfo":                        file("35 31 0:32 /docker/7f3a /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("536870912\n"),
		},
		want: Limit{Bytes: 512 * mib, File: "/sys/fs/cgroup/memory/memory.limit_in_bytes", Version: "v1"},
	}, {
		name: "v2 with a cgroup namespace: the container is the root",
		files: fstest.MapFS{
			"proc/self/cgroup":             file("0::/\n"),
			"proc/self/mountinfo":          file(v2Mounts),
			"sys/fs/cgroup/memory.max":     file("2147483648\n"),
			"sys/fs/cgroup/memory.current": file("104857600\n"),
		},
		want: Limit{Bytes: 2 * gib, File: "/sys/fs/cgroup/memory.max", Version: "v2"},
	}, {
		name: "v2 nested: the container says max, the pod slice limits",
		files: fstest.MapFS{
			"proc/self/cgroup":                        file("0::" + container + "\n"),
			"proc/self/mountinfo":                     file(v2Mounts),
			"sys/fs/cgroup/kubepods.slice/memory.max": file("201863462912\n"),
			"sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/memory.max": file("max\n"),
			"sys/fs/cgroup" + podSlice + "/memory.max":                         file("805306368\n"),
			"sys/fs/cgroup" + container + "/memory.max":                        file("max\n"),
		},
		want: Limit{Bytes: 768 * mib, File: "/sys/fs/cgroup" + podSlice + "/memory.max", Version: "v2"},
	}, {
		name: "v2 nested: the container's own limit is the smaller",
		files: fstest.MapFS{
			"proc/self/cgroup":                          file("0::" + container + "\n"),
			"proc/self/mountinfo":                       file(v2Mounts),
			"sys/fs/cgroup" + podSlice + "/memory.max":  file("805306368\n"),
			"sys/fs/cgroup" + container + "/memory.max": file("419430400\n"),
		},
		want: Limit{Bytes: 400 * mib, File: "/sys/fs/cgroup" + container + "/memory.max", Version: "v2"},
	}, {
		name: "v2 max everywhere",
		files: fstest.MapFS{
			"proc/self/cgroup":                          file("0::" + container + "\n"),
			"proc/self/mountinfo":                       file(v2Mounts),
			"sys/fs/cgroup" + podSlice + "/memory.max":  file("max\n"),
			"sys/fs/cgroup" + container + "/memory.max": file("max\n"),
		},
		want: Limit{Version: "v2"},
	}, {
		name: "v2 mounted where the path has a space",
		files: fstest.MapFS{
			"proc/self/cgroup":             file("0::/job\n"),
			"proc/self/mountinfo":          file(`27 25 0:24 / /run/my\040cgroup rw - cgroup2 cgroup2 rw` + "\n"),
			"run/my cgroup/job/memory.max": file("3221225472"),
		},
		want: Limit{Bytes: 3 * gib, File: "/run/my cgroup/job/memory.max", Version: "v2"},
	}, {
		name: "v2 cgroup outside the namespace's root, shown with ..",
		files: fstest.MapFS{
			"proc/self/cgroup":                file("0::/../sibling.scope\n"),
			"proc/self/mountinfo":             file(v2Mounts),
			"sys/fs/cgroup/memory.max":        file("1073741824\n"),
			"sys/fs/sibling.scope/memory.max": file("4096\n"),
		},
		want: Limit{Bytes: gib, File: "/sys/fs/cgroup/memory.max", Version: "v2"},
	}, {
		name: "no memory controller at all",
		files: fstest.MapFS{
			"proc/self/cgroup":    file("1:cpu:/\n2:pids:/\n"),
			"proc/self/mountinfo": file(hybridMounts),
		},
		want: Limit{},
	}, {
		name: "memory hierarchy listed but not mounted",
		files: fstest.MapFS{
			"proc/self/cgroup":    file("0::/\n"),
			"proc/self/mountinfo": file(hybridMounts[:strings.Index(hybridMounts, "41 31")]),
		},
		want: Limit{},
	}, {
		name: "garbage in memory.max",
		files: fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"proc/self/mountinfo":      file(v2Mounts),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		},
		wantErr: `reading the memory limit in /sys/fs/cgroup/memory.max: "lots" is neither "max" nor a number of bytes`,
	}, {
		name: "a negative limit",
		files: fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"proc/self/mountinfo":                        file(hybridMounts),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("-1\n"),
		},
		wantErr: `/sys/fs/cgroup/memory/memory.limit_in_bytes: "-1" is neither`,
	}, {
		name: "garbage in /proc/self/cgroup",
		files: fstest.MapFS{
			"proc/self/cgroup":    file("memory=/kubepods\n"),
			"proc/self/mountinfo": file(v2Mounts),
		},
		wantErr: `/proc/self/cgroup: line "memory=/kubepods" is not id:controllers:/path`,
	}, {
		name: "garbage in /proc/self/mountinfo",
		files: fstest.MapFS{
			"proc/self/cgroup":    file("0::/\n"),
			"proc/self/mountinfo": file("27 25 0:24 /sys/fs/cgroup cgroup2\n"),
		},
		wantErr: `/proc/self/mountinfo: line "27 25 0:24 /sys/fs/cgroup cgroup2" has too few fields`,
	}, {
		name:    "no /proc (not Linux)",
		files:   fstest.MapFS{},
		wantErr: "reading /proc/self/cgroup",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadThisMachine reads the real /proc and cgroup mounts: whatever the
// machine's limit, its files must parse.
func TestReadThisMachine(t *testing.T) {
	lim, err := Read(os.DirFS("/"))
	if runtime.GOOS != "linux" {
		if err == nil {
			t.Fatalf("Read() on %s = %+v, want an error (no /proc/self/cgroup)", runtime.GOOS, lim)
		}
		return
	}
	if err != nil {
		t.Fatalf("Read() on this machine: %v", err)
	}
	if lim.Version == "" {
		t.Errorf("Read() on this machine found no memory controller: %+v", lim)
	}
	t.Logf("this machine: %+v", lim)
}

// deniedFS refuses to open one file, as a read-only or restricted mount
// does, and serves the rest from FS.
type deniedFS struct {
	fs.FS
	denied string
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if name == d.denied {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

// TestReadUnreadableLevel: a limit file that exists but cannot be read is an
// error naming it, not a level without a limit (which would let a larger
// ancestor's limit stand for the container's).
func TestReadUnreadableLevel(t *testing.T) {
	const cg = "/kubepods.slice/pod1/cri-containerd-1.scope"
	fsys := deniedFS{FS: fstest.MapFS{
		"proc/self/cgroup":                        file("0::" + cg + "\n"),
		"proc/self/mountinfo":                     file(v2Mounts),
		"sys/fs/cgroup/kubepods.slice/memory.max": file("201863462912\n"),
		"sys/fs/cgroup" + cg + "/memory.max":      file("419430400\n"),
	}, denied: "sys/fs/cgroup" + cg + "/memory.max"}
	lim, err := Read(fsys)
	if err == nil || !strings.Contains(err.Error(), "/sys/fs/cgroup"+cg+"/memory.max") {
		t.Fatalf("Read() = %+v, %v; want an error naming the unreadable memory.max", lim, err)
	}
}
