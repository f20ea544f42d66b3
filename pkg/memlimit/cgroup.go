// Package memlimit finds the memory limit of the cgroup the process runs in
// (cgroup v1 or v2) and gives a fraction of it to the Go runtime as its soft
// memory limit, so a container near its limit collects garbage harder
// instead of being OOM-killed. It replaces upstream's addon-resizer "nanny"
// for memory: the limit set on the Deployment is the one knob.
//
// It reads only files under a root it is given (the real "/" in production,
// a fake tree in tests) and knows nothing of Kubernetes or of the server.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// unlimitedAbove is where a cgroup v1 limit stops meaning anything: v1
// writes "no limit" as the largest page-aligned int64 (9223372036854771712
// with 4 KiB pages), and no machine has 4 EiB of memory.
const unlimitedAbove = 1 << 62

// Limit is the memory limit found for the process.
type Limit struct {
	// Bytes is the smallest limit of the process's cgroup and its
	// ancestors. Zero means no limit (every level says "max" or unlimited,
	// or no memory controller is mounted).
	Bytes int64
	// File is the file that gave Bytes, as a path under the root ("" when
	// Bytes is zero).
	File string
	// Version is "v1" or "v2": which hierarchy was read ("" when no memory
	// controller was found).
	Version string
}

// hierarchy is one line of /proc/self/cgroup that matters here.
type hierarchy struct {
	version string // "v1" or "v2"
	path    string // the process's cgroup, relative to the hierarchy's root
}

// mount is one cgroup mount from /proc/self/mountinfo.
type mount struct {
	root  string // the cgroup path mounted (what a bind mount or namespace shows as "/")
	point string // where it is mounted
}

// Read returns the memory limit of the cgroup the process runs in, read
// from fsys, a file system rooted at "/" (os.DirFS("/") in production; its
// paths have no leading slash).
//
// It takes the cgroup v1 memory controller when /proc/self/cgroup lists one
// (hybrid hosts mount v1 memory beside an empty v2 hierarchy), else the v2
// unified hierarchy. It reads memory.limit_in_bytes (v1) or memory.max (v2)
// in the process's cgroup and every ancestor up to the mount point, since an
// ancestor's limit binds too, and returns the smallest. A level without the
// file has no limit of its own. An error means a file was there but could
// not be read or parsed; it names the file.
func Read(fsys fs.FS) (Limit, error) {
	cg, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return Limit{}, fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	h, ok, err := memoryHierarchy(cg)
	if err != nil || !ok {
		return Limit{}, err
	}
	mi, err := fs.ReadFile(fsys, "proc/self/mountinfo")
	if err != nil {
		return Limit{}, fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	m, ok, err := cgroupMount(mi, h.version)
	if err != nil || !ok {
		return Limit{}, err
	}
	file := "memory.max"
	if h.version == "v1" {
		file = "memory.limit_in_bytes"
	}
	best := Limit{Version: h.version}
	for _, dir := range levels(m, h.path) {
		name := strings.TrimPrefix(path.Join(dir, file), "/")
		b, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no limit at this level (cgroup v2's root has no memory.max)
		}
		if err != nil {
			return Limit{}, fmt.Errorf("reading the memory limit in /%s: %w", name, err)
		}
		n, limited, err := parseLimit(b)
		if err != nil {
			return Limit{}, fmt.Errorf("reading the memory limit in /%s: %w", name, err)
		}
		if limited && (best.Bytes == 0 || n < best.Bytes) {
			best.Bytes, best.File = n, "/"+name
		}
	}
	return best, nil
}

// memoryHierarchy picks the hierarchy that holds the memory controller from
// the text of /proc/self/cgroup ("id:controllers:path" lines): the v1 line
// whose controllers include "memory", else the v2 line ("0::path"). ok is
// false when there is neither.
func memoryHierarchy(text []byte) (h hierarchy, ok bool, err error) {
	var v2 *hierarchy
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return hierarchy{}, false, fmt.Errorf("/proc/self/cgroup: line %q is not id:controllers:/path", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = &hierarchy{version: "v2", path: parts[2]}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return hierarchy{version: "v1", path: parts[2]}, true, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return hierarchy{}, false, fmt.Errorf("/proc/self/cgroup: %w", err)
	}
	if v2 == nil {
		return hierarchy{}, false, nil
	}
	return *v2, true, nil
}

// cgroupMount finds the mount of the given hierarchy in the text of
// /proc/self/mountinfo: fstype "cgroup" with the "memory" super option for
// v1, fstype "cgroup2" for v2. ok is false when it is not mounted.
func cgroupMount(text []byte, version string) (m mount, ok bool, err error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, found := strings.Cut(line, " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !found || len(fields) < 5 || len(tail) < 3 {
			return mount{}, false, fmt.Errorf("/proc/self/mountinfo: line %q has too few fields", line)
		}
		switch {
		case version == "v2" && tail[0] == "cgroup2":
		case version == "v1" && tail[0] == "cgroup" && hasOption(tail[2], "memory"):
		default:
			continue
		}
		return mount{root: unescape(fields[3]), point: unescape(fields[4])}, true, nil
	}
	if err := sc.Err(); err != nil {
		return mount{}, false, fmt.Errorf("/proc/self/mountinfo: %w", err)
	}
	return mount{}, false, nil
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and
// backslash (\040, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// levels lists the directories to read, the process's cgroup first, then
// each ancestor up to the mount point. The cgroup path is relative to the
// hierarchy's root; the mount shows m.root at m.point, so the part of the
// path below m.root is what lies below m.point. A path outside m.root or
// above m.point (a cgroup namespace or bind mount that hides it; a
// namespace shows an outside cgroup with "..") leaves only m.point.
func levels(m mount, cgPath string) []string {
	rel := "/"
	switch {
	case m.root == "/":
		rel = cgPath
	case cgPath == m.root:
	case strings.HasPrefix(cgPath, m.root+"/"):
		rel = strings.TrimPrefix(cgPath, m.root)
	}
	dir := path.Join(m.point, rel)
	if dir != m.point && !strings.HasPrefix(dir, m.point+"/") {
		dir = m.point // a path with "..", as a cgroup namespace shows an outside cgroup
	}
	out := []string{dir}
	for dir != m.point && strings.HasPrefix(dir, m.point+"/") {
		dir = path.Dir(dir)
		out = append(out, dir)
	}
	return out
}

// parseLimit reads a limit file's content: "max" (v2) or a number of bytes;
// a v1 number above unlimitedAbove means no limit. limited is false for no
// limit.
func parseLimit(b []byte) (n int64, limited bool, err error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false, nil
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%q is neither \"max\" nor a number of bytes", s)
	}
	if u > unlimitedAbove {
		return 0, false, nil
	}
	if u == 0 {
		return 0, false, fmt.Errorf("a limit of 0 bytes cannot be right")
	}
	return int64(u), true, nil
}
