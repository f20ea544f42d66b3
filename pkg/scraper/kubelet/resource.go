package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// maxResourceLine bounds one line of /metrics/resource; real lines are a
// few hundred bytes.
const maxResourceLine = 64 << 10

// The series of /metrics/resource we read; every other one is skipped.
const (
	seriesNodeCPU         = "node_cpu_usage_seconds_total"
	seriesNodeMemory      = "node_memory_working_set_bytes"
	seriesContainerCPU    = "container_cpu_usage_seconds_total"
	seriesContainerMemory = "container_memory_working_set_bytes"
	seriesContainerStart  = "container_start_time_seconds"
	// The swap series are alpha and only written for what the kubelet's
	// stats report swap for (k8s.io/kubernetes v1.37.2
	// pkg/kubelet/metrics/collectors/resource_metrics.go: a stat without
	// swapUsageBytes writes no sample). pod_swap_usage_bytes is not read:
	// PodMetrics lists containers only.
	seriesNodeSwap      = "node_swap_usage_bytes"
	seriesContainerSwap = "container_swap_usage_bytes"
)

// DecodeResource decodes a /metrics/resource body (Prometheus text format
// 0.0.4) into the batch of node. Samples without a timestamp get now.
//
// Only the lines of the series we read are parsed; they are parsed as
// the text format's parser (github.com/prometheus/common/expfmt) parses
// them, and a malformed one fails the whole node. Deliberate differences
// (fuzz_test.go holds the decoder to expfmt on them): comments and the
// lines of other series are skipped unparsed; values must be finite, not
// negative and fit their Point field; timestamps must lie in years 1970
// to 2200; a container sample needs non-empty container, namespace and pod
// labels; names, pods and containers are bounded (bounds.go); swap
// samples (node_swap_usage_bytes, container_swap_usage_bytes) are read as
// memory is, but their timestamps are not the point's; a metric
// name inside the braces (text format 1.0.0) is not read; repeated samples
// of a series and container replace the earlier ones.
func DecodeResource(r io.Reader, node string, now time.Time) (*points.Batch, error) {
	d := decoders.Get().(*resourceDecoder)
	defer d.release()
	d.now = now.UnixNano()
	if err := d.lines(r); err != nil {
		return nil, err
	}
	// Every kubelet reports the node's series: a body with none of ours is
	// not a kubelet's (an error page, a proxy's answer), and taking it as
	// "no pods" would drop every pod of the node.
	if d.node.has == 0 && len(d.slots) == 0 {
		return nil, errors.New("the body holds none of the resource metrics series (node_cpu_usage_seconds_total, container_cpu_usage_seconds_total, ...)")
	}
	return d.batch(node), nil
}

// lines reads r line by line through d.scan, which grows up to
// maxResourceLine, and hands each line to d.line.
func (d *resourceDecoder) lines(r io.Reader) error {
	buf := d.scan[:cap(d.scan)]
	start, end, line := 0, 0, 0
	for eof := false; ; {
		if i := bytes.IndexByte(buf[start:end], '\n'); i >= 0 {
			line++
			if err := d.line(buf[start:start+i], false); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			start += i + 1
			continue
		}
		if eof {
			if start < end {
				if err := d.line(buf[start:end], true); err != nil {
					return fmt.Errorf("line %d: %w", line+1, err)
				}
			}
			d.scan = buf[:0]
			return nil
		}
		end = copy(buf, buf[start:end])
		start = 0
		if end == len(buf) {
			if len(buf) >= maxResourceLine {
				return fmt.Errorf("line %d is longer than %d bytes", line+1, maxResourceLine)
			}
			buf = append(buf[:end], make([]byte, min(2*len(buf), maxResourceLine)-end)...)
		}
		n, err := r.Read(buf[end:])
		end += n
		switch {
		case errors.Is(err, io.EOF):
			eof = true
		case err != nil:
			return err
		}
	}
}

// decoders keeps decoders between scrapes: their maps and buffers keep
// their sizes, so a scrape does not grow them again from nothing.
var decoders = sync.Pool{New: func() any {
	return &resourceDecoder{index: map[uint64]int{}, podIndex: map[uint64]int{}, seed: maphash.MakeSeed(), scan: make([]byte, 0, 16<<10)}
}}

// Past these sizes a decoder's buffers are dropped rather than pooled, so
// one huge body does not keep its memory.
const maxPooledSlots = 4096

// release clears the decoder for the next scrape and returns it to the pool.
func (d *resourceDecoder) release() {
	clear(d.index)
	clear(d.podIndex)
	if cap(d.slots) > maxPooledSlots {
		// Cleared maps keep their size: replace them too.
		d.slots, d.pods = nil, nil
		d.index, d.podIndex = map[uint64]int{}, map[uint64]int{}
	}
	// The names belong to the batch now, if there was one.
	d.names.Reset()
	clear(d.labels)
	d.slots, d.pods, d.key, d.labels = d.slots[:0], d.pods[:0], d.key[:0], d.labels[:0]
	d.node, d.series, d.next = sample{}, "", 0
	decoders.Put(d)
}

// resourceDecoder gathers one body's samples. Names live in one arena and
// containers in one slice while decoding; batch turns them into a Batch
// with one allocation for all names and one for all containers.
type resourceDecoder struct {
	// scan is the scanner's buffer, kept between scrapes.
	scan []byte
	now  int64
	node sample
	// names holds every namespace, pod and container name of the body;
	// the batch's names are slices of its string, so it is never copied.
	// namesHint is its size the scrape before, to allocate it once.
	names     strings.Builder
	namesHint int
	pods      []podSpan
	// slots are the containers in first-seen order.
	slots []slot
	// index finds a slot by a hash of namespace, pod and container name
	// when the samples do not come in the order of the slots; podIndex a
	// pod by a hash of namespace and name (see find). Hash keys, unlike
	// string keys, cost no allocation per entry.
	index    map[uint64]int
	podIndex map[uint64]int
	seed     maphash.Seed
	key      []byte
	// labels are the names of the sample's labels other than those of
	// sampleLabels, for duplicates.
	labels [][]byte
	// series is the series of the previous sample; next is the slot
	// expected for the next sample of that series. Kubelets list every
	// series' containers in one order, so after the first series a sample's
	// slot is found by one comparison rather than a map lookup.
	series string
	next   int
}

// span is a name in the arena. int32 bounds it at 2 GiB; the arena
// holds at most maxNameBytes. Small spans keep the 10,000 slots a
// decoder may hold at 56 bytes each.
type span struct{ start, end int32 }

type podSpan struct {
	namespace, name span
	containers      int32
}

type slot struct {
	pod  int32
	name span
	s    sample
}

// sample is what /metrics/resource gives of a node or container: the
// values of a points.Point but its ephemeral storage, which the format
// lacks. Leaving it out keeps a slot at 64 bytes, as before swap, and the
// slots of a body at the bounds at 0.6 MiB.
type sample struct {
	ts, start        int64
	cpu, memory, swp uint64
	has              points.Has
	// cpuTimed: the timestamp came from the CPU sample.
	cpuTimed bool
}

// point is the sample as a point.
func (s *sample) point() points.Point {
	return points.Point{Timestamp: s.ts, StartTime: s.start, CPU: s.cpu, Memory: s.memory, Swap: s.swp, Has: s.has}
}

func (d *resourceDecoder) text(s span) string { return d.names.String()[s.start:s.end] }

func (d *resourceDecoder) add(b []byte) (span, error) {
	if d.names.Len()+len(b) > maxNameBytes {
		return span{}, fmt.Errorf("names of more than %d bytes: not a kubelet's answer", maxNameBytes)
	}
	if d.names.Cap() == 0 {
		d.names.Grow(max(d.namesHint, len(b)))
	}
	if d.names.Cap()-d.names.Len() < len(b) {
		// Double: Builder grows large buffers by a quarter at a time.
		d.names.Grow(max(len(b), d.names.Cap()))
	}
	start := d.names.Len()
	d.names.Write(b)
	return span{int32(start), int32(d.names.Len())}, nil
}

type sampleLabels struct {
	container, namespace, pod []byte
}

// line reads one line; unterminated says the body ended inside it.
func (d *resourceDecoder) line(l []byte, unterminated bool) error {
	l = skipSpace(l)
	if len(l) == 0 || l[0] == '#' {
		return nil
	}
	nameEnd := 0
	for nameEnd < len(l) && l[nameEnd] != '{' && l[nameEnd] != ' ' && l[nameEnd] != '\t' {
		nameEnd++
	}
	var series string
	switch string(l[:nameEnd]) {
	case seriesNodeCPU:
		series = seriesNodeCPU
	case seriesNodeMemory:
		series = seriesNodeMemory
	case seriesContainerCPU:
		series = seriesContainerCPU
	case seriesContainerMemory:
		series = seriesContainerMemory
	case seriesContainerStart:
		series = seriesContainerStart
	case seriesNodeSwap:
		series = seriesNodeSwap
	case seriesContainerSwap:
		series = seriesContainerSwap
	default:
		return nil
	}
	if unterminated {
		return fmt.Errorf("%s: the body ends inside the sample (truncated?)", series)
	}
	rest := skipSpace(l[nameEnd:])
	var lbl sampleLabels
	if len(rest) > 0 && rest[0] == '{' {
		var err error
		if rest, err = d.parseLabels(rest[1:], &lbl); err != nil {
			return fmt.Errorf("%s: %w", series, err)
		}
		rest = skipSpace(rest)
	}
	value, ts, err := parseValueAndTimestamp(rest)
	if err != nil {
		return fmt.Errorf("%s: %w", series, err)
	}
	if math.IsNaN(value) || math.IsInf(value, 0) || value < 0 {
		return fmt.Errorf("%s: value %v is not a finite non-negative number", series, value)
	}
	if err := checkRange(series, value); err != nil {
		return err
	}
	if ts == 0 {
		ts = d.now
	}
	switch series {
	case seriesNodeCPU:
		d.node.setCPU(value, ts)
	case seriesNodeMemory:
		d.node.setMemory(value, ts)
	case seriesNodeSwap:
		d.node.setSwap(value)
	default:
		if len(lbl.container) == 0 || len(lbl.namespace) == 0 || len(lbl.pod) == 0 {
			return fmt.Errorf("%s: sample lacks a container, namespace or pod label", series)
		}
		if err := checkNames(&lbl); err != nil {
			return fmt.Errorf("%s: %w", series, err)
		}
		i, err := d.slotFor(series, &lbl)
		if err != nil {
			return err
		}
		sl := &d.slots[i]
		switch series {
		case seriesContainerCPU:
			sl.s.setCPU(value, ts)
		case seriesContainerMemory:
			sl.s.setMemory(value, ts)
		case seriesContainerStart:
			sl.s.start = int64(math.Round(value * 1e9))
		case seriesContainerSwap:
			sl.s.setSwap(value)
		}
	}
	return nil
}

// checkNames bounds the names a container sample carries (bounds.go).
func checkNames(l *sampleLabels) error {
	switch {
	case len(l.namespace) > maxNamespace:
		return nameTooLong("namespace", l.namespace, maxNamespace)
	case len(l.pod) > maxPodName:
		return nameTooLong("pod", l.pod, maxPodName)
	case len(l.container) > maxContainerName:
		return nameTooLong("container", l.container, maxContainerName)
	}
	return nil
}

func nameTooLong(what string, value []byte, limit int) error {
	return fmt.Errorf("%s label %q is longer than %d bytes: not a Kubernetes name", what, truncate(value), limit)
}

// The largest values a Point holds, as float64: 2^64 nanoseconds of CPU
// (18,446,744,073.7 s, about 584 core-years), 2^64 bytes of memory and 2^63
// nanoseconds of start time (year 2262). A value at or past its bound
// would wrap around when converted.
const (
	maxCPUSeconds   = 0x1p64 / 1e9
	maxMemoryBytes  = 0x1p64
	maxStartSeconds = 0x1p63 / 1e9
)

// checkRange fails a finite, non-negative value of series that its Point
// field cannot hold. Each series has its own unit: CPU and start times are
// seconds held as nanoseconds, memory is bytes held as bytes.
func checkRange(series string, value float64) error {
	var limit float64
	switch series {
	case seriesNodeCPU, seriesContainerCPU:
		// Rounding value*1e9 must stay below 2^64: compare the product.
		if value*1e9 < 0x1p64 {
			return nil
		}
		limit = maxCPUSeconds
	case seriesNodeMemory, seriesContainerMemory, seriesNodeSwap, seriesContainerSwap:
		if value < maxMemoryBytes {
			return nil
		}
		limit = maxMemoryBytes
	case seriesContainerStart:
		if value*1e9 < 0x1p63 {
			return nil
		}
		limit = maxStartSeconds
	}
	return fmt.Errorf("%s: value %v is out of range (must be below %g); the kubelet sent damaged data", series, value, limit)
}

func (s *sample) setCPU(seconds float64, ts int64) {
	s.cpu = uint64(math.Round(seconds * 1e9))
	s.has |= points.HasCPU
	s.ts, s.cpuTimed = ts, true
}

// setSwap sets the swap in use; its sample time takes no part in the
// point's timestamp, as in the summary.
func (s *sample) setSwap(bytes float64) {
	s.swp = uint64(math.Round(bytes))
	s.has |= points.HasSwap
}

func (s *sample) setMemory(bytes float64, ts int64) {
	s.memory = uint64(math.Round(bytes))
	s.has |= points.HasMemory
	if !s.cpuTimed {
		s.ts = ts
	}
}

// slotFor finds or adds the container of a sample of series.
func (d *resourceDecoder) slotFor(series string, l *sampleLabels) (int, error) {
	if series != d.series {
		d.series, d.next = series, 0
	}
	if i := d.next; i < len(d.slots) {
		sl := &d.slots[i]
		p := &d.pods[sl.pod]
		if d.text(sl.name) == string(l.container) && d.text(p.name) == string(l.pod) && d.text(p.namespace) == string(l.namespace) {
			d.next = i + 1
			return i, nil
		}
	}
	d.key = append(append(append(append(append(d.key[:0], l.namespace...), 0), l.pod...), 0), l.container...)
	i, h, ok := find(d.index, maphash.Bytes(d.seed, d.key), func(i int) bool { return d.slotIs(i, l) })
	if !ok {
		var err error
		if i, err = d.addSlot(l); err != nil {
			return 0, err
		}
		d.index[h] = i
	}
	d.next = i + 1
	return i, nil
}

func (d *resourceDecoder) slotIs(i int, l *sampleLabels) bool {
	sl := &d.slots[i]
	return d.text(sl.name) == string(l.container) && d.podIs(int(sl.pod), l)
}

func (d *resourceDecoder) podIs(i int, l *sampleLabels) bool {
	p := &d.pods[i]
	return d.text(p.name) == string(l.pod) && d.text(p.namespace) == string(l.namespace)
}

// find looks an entry up in an index keyed by hash: on a collision the
// next hash value is tried, so eq decides. It returns the entry, or the
// hash under which to add it.
func find(index map[uint64]int, h uint64, eq func(int) bool) (int, uint64, bool) {
	for {
		i, ok := index[h]
		if !ok {
			return 0, h, false
		}
		if eq(i) {
			return i, h, true
		}
		h++
	}
}

// doubled makes room in s for n more elements, doubling its capacity
// when it must grow: append grows large slices by a quarter at a time,
// which allocates five times their final size on the way.
func doubled[S ~[]E, E any](s S, n int) S {
	if len(s)+n <= cap(s) {
		return s
	}
	return slices.Grow(s, max(n, cap(s)))
}

// addSlot adds a container, and its pod when new, in first-seen order.
func (d *resourceDecoder) addSlot(l *sampleLabels) (int, error) {
	if len(d.slots) == maxContainers {
		return 0, fmt.Errorf("more than %d containers: not a kubelet's answer", maxContainers)
	}
	pi := -1
	// A pod's containers usually come one after another: look at the pod
	// of the last slot before searching.
	if n := len(d.slots); n > 0 && d.podIs(int(d.slots[n-1].pod), l) {
		pi = int(d.slots[n-1].pod)
	}
	if pi < 0 {
		d.key = append(append(append(d.key[:0], l.namespace...), 0), l.pod...)
		var (
			h  uint64
			ok bool
		)
		if pi, h, ok = find(d.podIndex, maphash.Bytes(d.seed, d.key), func(i int) bool { return d.podIs(i, l) }); !ok {
			if len(d.pods) == maxPods {
				return 0, fmt.Errorf("more than %d pods: not a kubelet's answer", maxPods)
			}
			ns, err := d.add(l.namespace)
			if err != nil {
				return 0, err
			}
			name, err := d.add(l.pod)
			if err != nil {
				return 0, err
			}
			pi = len(d.pods)
			d.podIndex[h] = pi
			d.pods = append(doubled(d.pods, 1), podSpan{namespace: ns, name: name})
		}
	}
	name, err := d.add(l.container)
	if err != nil {
		return 0, err
	}
	d.pods[pi].containers++
	d.slots = append(doubled(d.slots, 1), slot{pod: int32(pi), name: name})
	return len(d.slots) - 1, nil
}

// batch builds the node's Batch in a batch from the pool: one string holds
// every name, one array every container, each pod's containers in
// first-seen order.
func (d *resourceDecoder) batch(node string) *points.Batch {
	b := batches.Get().(*points.Batch)
	b.Reset(node, len(d.pods), len(d.slots))
	b.NodePoint = d.node.point()
	// A node with only its swap sample still gets a sample time.
	if b.NodePoint.Has != 0 && b.NodePoint.Timestamp == 0 {
		b.NodePoint.Timestamp = d.now
	}
	if len(d.pods) == 0 {
		return b
	}
	d.namesHint = d.names.Len()
	str := d.text
	for i := range d.pods {
		p := &d.pods[i]
		b.AddPod(str(p.namespace), str(p.name), int(p.containers))
	}
	for i := range d.slots {
		sl := &d.slots[i]
		pt := sl.s.point()
		// A container seen only in container_start_time_seconds
		// (terminated, or not measured yet) still gets a sample time.
		if pt.Timestamp == 0 {
			pt.Timestamp = d.now
		}
		p := &b.Pods[sl.pod]
		p.Containers = append(p.Containers, points.Container{Name: str(sl.name), Point: pt})
	}
	return b
}

// batches keeps the batches the scraper hands back (Client.Recycle) for
// later scrapes, so a steady fleet's decoding allocates only the names.
var batches = sync.Pool{New: func() any { return new(points.Batch) }}

// Past these sizes a batch is dropped rather than pooled, so one huge body
// does not keep its memory.
const (
	maxPooledPods       = 1024
	maxPooledContainers = 4096
)

// recycle puts b back in the pool. b and its slices must not be used after.
// It is cleared when it is next filled (Reset), not here as well: a pooled
// batch's old names live at most until the pool is emptied, two collections.
func recycle(b *points.Batch) {
	if cap(b.Pods) > maxPooledPods || b.ContainersCap() > maxPooledContainers {
		return
	}
	batches.Put(b)
}

// parseLabels reads `name="value",...}` and returns what follows the
// brace, as the text format's parser reads it: legacy label names (parts
// may be quoted), no duplicate or reserved (__name__) name, values quoted
// with \\, \" and \n escapes and valid UTF-8, a trailing comma allowed.
// Only the labels we need are kept.
func (d *resourceDecoder) parseLabels(b []byte, out *sampleLabels) ([]byte, error) {
	d.labels = d.labels[:0]
	var seen uint8
	for {
		b = skipSpace(b)
		if len(b) == 0 {
			return nil, errors.New("unterminated label set")
		}
		if b[0] == '}' {
			return b[1:], nil
		}
		name, rest, err := parseLabelName(b)
		if err != nil {
			return nil, err
		}
		// The labels we keep are marked in seen; others, which kubelets
		// do not send, are listed in d.labels.
		var keep *[]byte
		var bit uint8
		switch string(name) {
		case "__name__":
			return nil, errors.New("label name __name__ is reserved")
		case "container":
			keep, bit = &out.container, 1
		case "namespace":
			keep, bit = &out.namespace, 2
		case "pod":
			keep, bit = &out.pod, 4
		default:
			for _, n := range d.labels {
				if string(n) == string(name) {
					return nil, fmt.Errorf("label %s appears twice", name)
				}
			}
			d.labels = append(d.labels, name)
		}
		if seen&bit != 0 {
			return nil, fmt.Errorf("label %s appears twice", name)
		}
		seen |= bit
		b = skipSpace(rest)
		if len(b) == 0 || b[0] != '=' {
			return nil, fmt.Errorf("malformed label %s: no '=' after its name", truncate(name))
		}
		b = skipSpace(b[1:])
		if len(b) == 0 || b[0] != '"' {
			return nil, fmt.Errorf("label %s: value is not quoted", name)
		}
		value, rest, err := parseLabelValue(b[1:])
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", name, err)
		}
		if keep != nil {
			*keep = value
		}
		b = skipSpace(rest)
		switch {
		case len(b) > 0 && b[0] == ',':
			b = b[1:]
		case len(b) > 0 && b[0] == '}':
		default:
			return nil, fmt.Errorf("malformed label set after label %s", name)
		}
	}
}

// parseLabelName reads a label name at the start of b as the text format
// reads one: letters, digits and underscores, of which a last part may be
// quoted (with \\, \" and \n escapes; the name then ends at the closing
// quote). The name must be a legacy one (isLegacyName); the caller checks
// whether it is reserved or repeated.
func parseLabelName(b []byte) (name, rest []byte, err error) {
	i := 0
	for i < len(b) && isNameByte(b[i]) {
		i++
	}
	if i == len(b) || b[i] != '"' {
		if i == 0 {
			return nil, nil, fmt.Errorf("malformed label in %q", truncate(b))
		}
		// Only name bytes: legacy unless it starts with a digit.
		if '0' <= b[0] && b[0] <= '9' {
			return nil, nil, fmt.Errorf("invalid label name %q", truncate(b[:i]))
		}
		return b[:i], b[i:], nil
	}
	prefix := b[:i]
	q, rest, err := parseQuoted(b[i+1:])
	if err != nil {
		return nil, nil, fmt.Errorf("label name: %w", err)
	}
	name = append(prefix[:len(prefix):len(prefix)], q...)
	if !isLegacyName(name) {
		return nil, nil, fmt.Errorf("invalid label name %q", truncate(name))
	}
	return name, rest, nil
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// isLegacyName: [a-zA-Z_][a-zA-Z0-9_]*.
func isLegacyName(b []byte) bool {
	if len(b) == 0 || '0' <= b[0] && b[0] <= '9' {
		return false
	}
	for _, c := range b {
		if !isNameByte(c) {
			return false
		}
	}
	return true
}

// parseLabelValue reads a label value after its opening quote as
// parseQuoted does, and refuses one that is not valid UTF-8. A value
// without escapes, as kubelets write them, takes one pass.
func parseLabelValue(b []byte) (value, rest []byte, err error) {
	ascii := true
	for i, c := range b {
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[:i]) {
				return nil, nil, errors.New("value is not valid UTF-8")
			}
			return b[:i], b[i+1:], nil
		case c == '\\':
			value, rest, err = parseQuoted(b)
			if err == nil && !utf8.Valid(value) {
				return nil, nil, errors.New("value is not valid UTF-8")
			}
			return value, rest, err
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, nil, errors.New("unterminated label value")
}

// parseQuoted reads up to the closing quote, unescaping \\, \" and \n. It
// returns a slice of b when nothing needed unescaping.
func parseQuoted(b []byte) (value, rest []byte, err error) {
	if q := bytes.IndexByte(b, '"'); q >= 0 && bytes.IndexByte(b[:q], '\\') < 0 {
		return b[:q], b[q+1:], nil
	}
	var buf []byte
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			if buf == nil {
				return b[:i], b[i+1:], nil
			}
			return buf, b[i+1:], nil
		case '\\':
			if buf == nil {
				buf = append(make([]byte, 0, len(b)), b[:i]...)
			}
			i++
			if i == len(b) {
				return nil, nil, errors.New("unterminated escape")
			}
			switch b[i] {
			case '\\', '"':
				buf = append(buf, b[i])
			case 'n':
				buf = append(buf, '\n')
			default:
				return nil, nil, fmt.Errorf("unknown escape \\%c", b[i])
			}
		default:
			if buf != nil {
				buf = append(buf, b[i])
			}
		}
	}
	return nil, nil, errors.New("unterminated label value")
}

// parseValueAndTimestamp reads `value[ timestamp_ms]` up to the end of the
// line, nothing after: a blank after the value must lead to a timestamp.
// A missing timestamp is 0; the timestamp is returned in Unix nanoseconds.
func parseValueAndTimestamp(b []byte) (float64, int64, error) {
	// The text format's parser refuses hexadecimal floats and digit
	// separators, which strconv takes: note their marks on the way.
	end, decimal := 0, true
	for ; end < len(b) && b[end] != ' ' && b[end] != '\t'; end++ {
		if c := b[end]; c == 'p' || c == 'P' || c == '_' {
			decimal = false
		}
	}
	if end == 0 {
		return 0, 0, errors.New("missing value")
	}
	if !decimal {
		return 0, 0, fmt.Errorf("value %q is not a decimal number", truncate(b[:end]))
	}
	v, err := strconv.ParseFloat(string(b[:end]), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("value %q: %w", truncate(b[:end]), err)
	}
	if end == len(b) {
		return v, 0, nil
	}
	b = skipSpace(b[end:])
	end = 0
	for end < len(b) && b[end] != ' ' && b[end] != '\t' {
		end++
	}
	if end < len(b) {
		return 0, 0, fmt.Errorf("%q after the timestamp", truncate(b[end:]))
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("timestamp %q: %w", truncate(b), err)
	}
	// Milliseconds in years 1970..2200, as for summary timestamps.
	if ms <= 0 || ms > 7258118400000 {
		return 0, 0, fmt.Errorf("timestamp %d ms is out of range", ms)
	}
	return v, ms * int64(time.Millisecond), nil
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
