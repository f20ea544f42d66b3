package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// DecodeSummary decodes a /stats/summary body, with only_cpu_and_memory=true
// or without, into the batch of node. now stands in for a sample time the
// kubelet left out.
//
// It reads the body as a stream through a fixed window and keeps only the
// fields it uses (k8s.io/kubelet/pkg/apis/stats/v1alpha1: node startTime,
// cpu, memory, swap and fs; each pod's podRef and containers' name,
// startTime, cpu, memory, swap, rootfs and logs), so its memory is that of
// the batch it returns whatever the body holds. Swap is swapUsageBytes;
// a container's ephemeral storage is its rootfs usedBytes plus its logs
// usedBytes when present (the kubelet's own sum for the pod's
// ephemeral-storage stat), saturating at 2^64-1; a node's is its fs
// usedBytes. Their times are read as times but take no part in the
// point's timestamp. It accepts what encoding/json accepts into the kubelet's
// stats types, keys matched case-insensitively, with these differences:
// fields it does not use are checked as JSON only, not for their types; a
// key it uses may appear once per object; names, pods and containers are
// bounded (bounds.go); times are at most 64 bytes of RFC 3339 and must
// lie in years 1970 to 2200; nesting is bounded at 10,000 levels, as in
// encoding/json; a container of a named pod must have a name. A pod
// without name or namespace is skipped; anything else malformed fails the
// whole node. FuzzDecodeSummary holds it to encoding/json.
func DecodeSummary(r io.Reader, node string, now time.Time) (*points.Batch, error) {
	d := summaryDecoders.Get().(*summaryDecoder)
	defer d.release()
	d.js.reset(r)
	d.now, d.node = now.UnixNano(), node
	d.b = batches.Get().(*points.Batch)
	d.b.Reset(node, 0, 0)
	if err := d.decode(); err != nil {
		recycle(d.b)
		return nil, fmt.Errorf("decoding the summary JSON: %w", err)
	}
	b := d.b
	var err error
	if b.NodePoint, err = d.nodeStats.point(d.now); err != nil {
		recycle(b)
		return nil, fmt.Errorf("node stats: %w", err)
	}
	// A kubelet always reports its node; an answer with neither node nor
	// pod stats is not one, and taking it as "no pods" would drop every pod
	// of the node.
	if b.NodePoint.Has == 0 && len(b.Pods) == 0 {
		recycle(b)
		return nil, errors.New("the summary holds neither node nor pod stats")
	}
	return b, nil
}

var summaryDecoders = sync.Pool{New: func() any {
	return &summaryDecoder{js: jsonScanner{buf: make([]byte, 8<<10)}}
}}

// summaryDecoder is one decode's state, kept between scrapes.
type summaryDecoder struct {
	js   jsonScanner
	now  int64
	node string
	b    *points.Batch
	// nodeStats, pod: the node's stats and the pod being read.
	nodeStats stats
	pod       podScratch
	// pods and conts count the elements read, nameBytes the names
	// kept, for the bounds.
	pods, conts, nameBytes int
	// seen holds the keys read of each open object, by the depth of its
	// members; the members we read lie at most maxSummaryDepth deep.
	seen [maxSummaryDepth + 1]seen
}

// maxSummaryDepth is the depth of the deepest member we read:
// pods[].containers[].cpu.usageCoreNanoSeconds (or rootfs.usedBytes).
const maxSummaryDepth = 6

// Past these sizes a decoder's scratch is dropped rather than pooled.
const (
	maxPooledPodNames      = 16 << 10
	maxPooledPodContainers = 256
)

func (d *summaryDecoder) release() {
	d.js.r, d.b, d.node = nil, nil, ""
	d.nodeStats, d.pods, d.conts, d.nameBytes = stats{}, 0, 0, 0
	if cap(d.pod.names) > maxPooledPodNames || cap(d.pod.containers) > maxPooledPodContainers {
		d.pod = podScratch{}
	}
	if cap(d.js.open) > 1024 {
		d.js.open = nil
	}
	summaryDecoders.Put(d)
}

// stats is what we read of a node's or container's stats. A zero time is
// absent. fs is the node's fs, rootfs and logs a container's.
type stats struct {
	start            time.Time
	cpu, mem, swap   usage
	fs, rootfs, logs usage
}

// usage is what we read of a cpu, memory, swap or filesystem object: its
// time (zero: absent) and its counter (cpu.usageCoreNanoSeconds in
// nanocore-seconds, memory.workingSetBytes, swap.swapUsageBytes and
// usedBytes in bytes), which has says was present and not null.
type usage struct {
	at    time.Time
	value uint64
	has   bool
}

// point builds a point from stats. Its timestamp is the CPU sample's (rates
// are CPU's), else the memory sample's, else now.
func (s *stats) point(now int64) (points.Point, error) {
	var p points.Point
	var err error
	if p.StartTime, err = unixNanos("startTime", s.start); err != nil {
		return p, err
	}
	if s.mem.has {
		p.Memory = s.mem.value
		p.Has |= points.HasMemory
		if p.Timestamp, err = unixNanos("memory.time", s.mem.at); err != nil {
			return p, err
		}
	}
	if s.cpu.has {
		p.CPU = s.cpu.value
		p.Has |= points.HasCPU
		ts, err := unixNanos("cpu.time", s.cpu.at)
		if err != nil {
			return p, err
		}
		if ts != 0 {
			p.Timestamp = ts
		}
	}
	if p.Timestamp == 0 {
		p.Timestamp = now
	}
	if s.swap.has {
		p.Swap = s.swap.value
		p.Has |= points.HasSwap
	}
	switch {
	case s.fs.has:
		p.EphemeralStorage = s.fs.value
		p.Has |= points.HasEphemeralStorage
	case s.rootfs.has:
		p.EphemeralStorage = s.rootfs.value
		if s.logs.has {
			p.EphemeralStorage += s.logs.value
			if p.EphemeralStorage < s.logs.value {
				p.EphemeralStorage = math.MaxUint64
			}
		}
		p.Has |= points.HasEphemeralStorage
	}
	return p, nil
}

// Timestamps outside these years are damage, not data, and would overflow
// nanoseconds since the epoch.
const minYear, maxYear = 1970, 2200

// unixNanos converts an optional time; zero gives 0.
func unixNanos(field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if y := t.Year(); y < minYear || y > maxYear {
		return 0, fmt.Errorf("%s %s is out of range", field, t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

// podScratch is the pod being read: its names in one arena, its
// containers in order. A pod's podRef may come after its containers.
type podScratch struct {
	names           []byte
	namespace, name span
	containers      []containerScratch
}

type containerScratch struct {
	name  span
	stats stats
}

// Keys are matched as encoding/json matches them to struct fields:
// exactly, else under Unicode case folding.
func keyIs(key []byte, name string) bool { return bytes.EqualFold(key, []byte(name)) }

// seen records the keys read of one object, a bit each, to refuse a
// repeated one: the kubelet never repeats a key, and encoding/json's
// merging of repeats (a second array decoded into the first one's
// elements) is not worth copying.
type seen uint16

// once marks key, bit of the object at depth, as read; a second time is
// an error.
func (d *summaryDecoder) once(depth int, bit seen, key []byte) error {
	s := &d.seen[depth]
	if *s&bit != 0 {
		return fmt.Errorf("key %q appears twice in one object", key)
	}
	*s |= bit
	return nil
}

func typeErr(c byte, what string) error {
	return fmt.Errorf("cannot unmarshal %s into %s", jsonKind(c), what)
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a bool"
	case 'n':
		return "null"
	}
	return "a number"
}

// decode reads the top-level value.
func (d *summaryDecoder) decode() error {
	c, err := d.js.next()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return io.EOF
		}
		return err
	}
	if err := d.object(c, 0, "the summary object", d.summaryMember); err != nil {
		return err
	}
	end, err := d.js.atEnd()
	if err != nil {
		return err
	}
	if !end {
		return errors.New("data after the top-level object")
	}
	return nil
}

// summaryMember reads a member of the summary object: its node and pods.
func (d *summaryDecoder) summaryMember(key []byte, c byte, depth int) error {
	var err error
	switch {
	case keyIs(key, "node"):
		if err = d.once(depth, 1, key); err == nil {
			err = d.object(c, depth, "node", d.nodeMember)
		}
	case keyIs(key, "pods"):
		if err = d.once(depth, 2, key); err == nil {
			err = d.readPods(c)
		}
	default:
		err = d.js.skip(depth, c)
	}
	return err
}

// object reads an object or null whose first byte c was read, at depth
// (the objects and arrays around it), calling member for each key. A
// member reader gets the key and its value's first byte.
func (d *summaryDecoder) object(c byte, depth int, what string, member func(key []byte, c byte, depth int) error) error {
	switch c {
	case 'n':
		return d.js.null()
	case '{':
	default:
		return typeErr(c, what)
	}
	if depth+1 < len(d.seen) {
		d.seen[depth+1] = 0
	}
	for first := true; ; first = false {
		ok, err := d.js.member(first)
		if err != nil || !ok {
			return err
		}
		key := d.js.str
		c, err := d.js.next()
		if err != nil {
			return err
		}
		if err := member(key, c, depth+1); err != nil {
			return err
		}
	}
}

func (d *summaryDecoder) nodeMember(key []byte, c byte, depth int) error {
	if keyIs(key, "fs") {
		err := d.once(depth, 1<<12, key)
		if err == nil {
			err = d.readUsage(c, depth, "node", kindFs, &d.nodeStats.fs)
		}
		return err
	}
	return d.statsMember(&d.nodeStats, "node", key, c, depth)
}

// statsMember reads the startTime, cpu, memory and swap of a node or
// container into st; what names it in errors.
func (d *summaryDecoder) statsMember(st *stats, what string, key []byte, c byte, depth int) error {
	var err error
	switch {
	case keyIs(key, "startTime"):
		if err = d.once(depth, 1<<8, key); err == nil {
			st.start, err = d.readTime(c, what, "startTime")
		}
	case keyIs(key, "cpu"):
		if err = d.once(depth, 1<<9, key); err == nil {
			err = d.readUsage(c, depth, what, kindCPU, &st.cpu)
		}
	case keyIs(key, "memory"):
		if err = d.once(depth, 1<<10, key); err == nil {
			err = d.readUsage(c, depth, what, kindMemory, &st.mem)
		}
	case keyIs(key, "swap"):
		if err = d.once(depth, 1<<11, key); err == nil {
			err = d.readUsage(c, depth, what, kindSwap, &st.swap)
		}
	default:
		err = d.js.skip(depth, c)
	}
	return err
}

// usageKind is which object readUsage reads: its name, its counter's key.
type usageKind uint8

const (
	kindCPU usageKind = iota
	kindMemory
	kindSwap
	kindFs
	kindRootfs
	kindLogs
)

// usageObjects names each kind's object and the fields read, for errors.
var usageObjects = [...]struct{ object, time, counter string }{
	kindCPU:    {"cpu", "cpu.time", "cpu.usageCoreNanoSeconds"},
	kindMemory: {"memory", "memory.time", "memory.workingSetBytes"},
	kindSwap:   {"swap", "swap.time", "swap.swapUsageBytes"},
	kindFs:     {"fs", "fs.time", "fs.usedBytes"},
	kindRootfs: {"rootfs", "rootfs.time", "rootfs.usedBytes"},
	kindLogs:   {"logs", "logs.time", "logs.usedBytes"},
}

// isCounter says whether key is the counter of kind's object. The keys
// are constants, not arguments: keyIs with a constant name does not copy
// it.
func (k usageKind) isCounter(key []byte) bool {
	switch k {
	case kindCPU:
		return keyIs(key, "usageCoreNanoSeconds")
	case kindMemory:
		return keyIs(key, "workingSetBytes")
	case kindSwap:
		return keyIs(key, "swapUsageBytes")
	}
	return keyIs(key, "usedBytes")
}

// readUsage reads the object (or null) of kind of a node or container
// into u: its time and its counter. what names the owner in errors.
func (d *summaryDecoder) readUsage(c byte, depth int, what string, kind usageKind, u *usage) error {
	names := &usageObjects[kind]
	return d.object(c, depth, names.object, func(key []byte, c byte, depth int) error {
		var err error
		switch {
		case keyIs(key, "time"):
			if err = d.once(depth, 1, key); err == nil {
				u.at, err = d.readTime(c, what, names.time)
			}
		case kind.isCounter(key):
			if err = d.once(depth, 2, key); err == nil {
				u.value, u.has, err = d.readUint(c, what, names.counter)
			}
		default:
			err = d.js.skip(depth, c)
		}
		return err
	})
}

// readPods reads the pods array (or null), emitting each named pod.
func (d *summaryDecoder) readPods(c byte) error {
	return d.array(c, "pods", func(c byte) error {
		if d.pods++; d.pods > maxPods {
			return fmt.Errorf("more than %d pods: not a kubelet's answer", maxPods)
		}
		p := &d.pod
		p.names, p.containers = p.names[:0], p.containers[:0]
		p.namespace, p.name = span{}, span{}
		if err := d.object(c, 2, "a pod", d.podMember); err != nil {
			return err
		}
		return d.emit()
	})
}

// array reads an array or null whose first byte c was read, calling
// element with each element's first byte; what names it in errors.
func (d *summaryDecoder) array(c byte, what string, element func(c byte) error) error {
	switch c {
	case 'n':
		return d.js.null()
	case '[':
	default:
		return typeErr(c, what)
	}
	for first := true; ; first = false {
		c, ok, err := d.js.element(first)
		if err != nil || !ok {
			return err
		}
		if err := element(c); err != nil {
			return err
		}
	}
}

func (d *summaryDecoder) podMember(key []byte, c byte, depth int) error {
	p := &d.pod
	switch {
	case keyIs(key, "podRef"):
		if err := d.once(depth, 1, key); err != nil {
			return err
		}
		return d.object(c, depth, "podRef", func(key []byte, c byte, depth int) error {
			switch {
			case keyIs(key, "name"):
				if err := d.once(depth, 1, key); err != nil {
					return err
				}
				return d.name(c, &p.name, maxPodName, "pod name")
			case keyIs(key, "namespace"):
				if err := d.once(depth, 2, key); err != nil {
					return err
				}
				return d.name(c, &p.namespace, maxNamespace, "pod namespace")
			}
			return d.js.skip(depth, c)
		})
	case keyIs(key, "containers"):
		if err := d.once(depth, 2, key); err != nil {
			return err
		}
		return d.readContainers(c, depth)
	}
	return d.js.skip(depth, c)
}

func (d *summaryDecoder) readContainers(c byte, depth int) error {
	p := &d.pod
	return d.array(c, "containers", func(c byte) error {
		if d.conts++; d.conts > maxContainers {
			return fmt.Errorf("more than %d containers: not a kubelet's answer", maxContainers)
		}
		p.containers = append(p.containers, containerScratch{})
		ct := &p.containers[len(p.containers)-1]
		return d.object(c, depth+1, "a container", func(key []byte, c byte, depth int) error {
			switch {
			case keyIs(key, "name"):
				if err := d.once(depth, 1, key); err != nil {
					return err
				}
				return d.name(c, &ct.name, maxContainerName, "container name")
			case keyIs(key, "rootfs"):
				if err := d.once(depth, 1<<13, key); err != nil {
					return err
				}
				return d.readUsage(c, depth, "container", kindRootfs, &ct.stats.rootfs)
			case keyIs(key, "logs"):
				if err := d.once(depth, 1<<14, key); err != nil {
					return err
				}
				return d.readUsage(c, depth, "container", kindLogs, &ct.stats.logs)
			}
			return d.statsMember(&ct.stats, "container", key, c, depth)
		})
	})
}

// emit adds the pod just read to the batch, unless it has no name or
// namespace.
func (d *summaryDecoder) emit() error {
	p := &d.pod
	if p.namespace.end == p.namespace.start || p.name.end == p.name.start {
		if v := klog.V(4); v.Enabled() {
			v.InfoS("Skipping a pod without name or namespace in the summary", "node", klog.KRef("", d.node),
				"pod", string(p.names[p.name.start:p.name.end]), "namespace", string(p.names[p.namespace.start:p.namespace.end]))
		}
		return nil
	}
	// One string holds the pod's names, its containers' included.
	names := string(p.names)
	str := func(s span) string { return names[s.start:s.end] }
	ns, name := str(p.namespace), str(p.name)
	if d.nameBytes += len(names); d.nameBytes > maxNameBytes {
		return fmt.Errorf("names of more than %d bytes: not a kubelet's answer", maxNameBytes)
	}
	b := d.b
	b.AddPod(ns, name, len(p.containers))
	pod := &b.Pods[len(b.Pods)-1]
	for i := range p.containers {
		c := &p.containers[i]
		cname := str(c.name)
		if cname == "" {
			return fmt.Errorf("pod %s/%s has a container without a name", ns, name)
		}
		pt, err := c.stats.point(d.now)
		if err != nil {
			return fmt.Errorf("pod %s/%s container %s: %w", ns, name, cname, err)
		}
		pod.Containers = append(pod.Containers, points.Container{Name: cname, Point: pt})
	}
	return nil
}

// name reads a string or null into the pod's arena; null leaves it.
func (d *summaryDecoder) name(c byte, dst *span, limit int, what string) error {
	switch c {
	case 'n':
		return d.js.null()
	case '"':
	default:
		return typeErr(c, what)
	}
	over, err := d.js.readString(limit)
	if err != nil {
		return err
	}
	if over {
		return fmt.Errorf("%s %q... is longer than %d bytes: not a Kubernetes name", what, d.js.str[:min(len(d.js.str), 64)], limit)
	}
	p := &d.pod
	start := len(p.names)
	p.names = append(p.names, d.js.str...)
	*dst = span{int32(start), int32(len(p.names))}
	return nil
}

// maxTime bounds a time string; RFC 3339 with nanoseconds is 35 bytes.
const maxTime = 64

// readTime reads an RFC 3339 time or null (zero), as metav1.Time does.
// owner and field name the value in errors.
func (d *summaryDecoder) readTime(c byte, owner, field string) (time.Time, error) {
	switch c {
	case 'n':
		return time.Time{}, d.js.null()
	case '"':
	default:
		return time.Time{}, typeErr(c, owner+"."+field)
	}
	over, err := d.js.readString(maxTime)
	if err != nil {
		return time.Time{}, err
	}
	if over {
		return time.Time{}, fmt.Errorf("%s.%s %q... is longer than %d bytes: not an RFC 3339 time", owner, field, d.js.str, maxTime)
	}
	t, err := time.Parse(time.RFC3339, string(d.js.str))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s.%s: %w", owner, field, err)
	}
	return t, nil
}

// readUint reads an unsigned integer or null (absent).
func (d *summaryDecoder) readUint(c byte, owner, field string) (uint64, bool, error) {
	switch {
	case c == 'n':
		return 0, false, d.js.null()
	case c == '-' || '0' <= c && c <= '9':
	default:
		return 0, false, typeErr(c, owner+"."+field)
	}
	over, err := d.js.readNumber(c)
	if err != nil {
		return 0, false, err
	}
	v, ok := parseUint(d.js.num)
	if over || !ok {
		return 0, false, fmt.Errorf("cannot unmarshal number %s into %s.%s: not an unsigned 64-bit integer", truncate(d.js.num), owner, field)
	}
	return v, true, nil
}

// parseUint parses decimal digits into a uint64, as strconv.ParseUint
// would, without a string.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n := v*10 + uint64(c-'0')
		if v > (1<<64-1)/10 || n < v*10 {
			return 0, false
		}
		v = n
	}
	return v, true
}
