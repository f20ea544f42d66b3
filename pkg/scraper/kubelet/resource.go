package kubelet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

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
)

// DecodeResource decodes a /metrics/resource body (Prometheus text format
// 0.0.4) into the batch of node. Samples without a timestamp get now. A
// malformed line of a series we read fails the whole node; lines of other
// series are skipped unparsed.
func DecodeResource(r io.Reader, node string, now time.Time) (*points.Batch, error) {
	d := decoders.Get().(*resourceDecoder)
	defer d.release()
	d.now = now.UnixNano()
	sc := bufio.NewScanner(r)
	sc.Buffer(d.scan[:0], maxResourceLine)
	line := 0
	for sc.Scan() {
		line++
		if err := d.line(sc.Bytes()); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d is longer than %d bytes", line+1, maxResourceLine)
		}
		return nil, err
	}
	// Every kubelet reports the node's series: a body with none of ours is
	// not a kubelet's (an error page, a proxy's answer), and taking it as
	// "no pods" would drop every pod of the node.
	if d.node.Has == 0 && len(d.slots) == 0 {
		return nil, errors.New("the body holds none of the resource metrics series (node_cpu_usage_seconds_total, container_cpu_usage_seconds_total, ...)")
	}
	return d.batch(node), nil
}

// decoders keeps decoders between scrapes: their maps and buffers keep
// their sizes, so a scrape does not grow them again from nothing.
var decoders = sync.Pool{New: func() any {
	return &resourceDecoder{index: map[uint64]int{}, podIndex: map[uint64]int{}, seed: maphash.MakeSeed(), scan: make([]byte, 0, 16<<10)}
}}

// Past these sizes a decoder's buffers are dropped rather than pooled, so
// one huge body does not keep its memory.
const (
	maxPooledNames = 64 << 10
	maxPooledSlots = 4096
)

// release clears the decoder for the next scrape and returns it to the pool.
func (d *resourceDecoder) release() {
	clear(d.index)
	clear(d.podIndex)
	if cap(d.names) > maxPooledNames || cap(d.slots) > maxPooledSlots {
		// Cleared maps keep their size: replace them too.
		d.names, d.slots, d.pods = nil, nil, nil
		d.index, d.podIndex = map[uint64]int{}, map[uint64]int{}
	}
	d.names, d.slots, d.pods, d.key = d.names[:0], d.slots[:0], d.pods[:0], d.key[:0]
	d.node, d.nodeCPUTimed, d.series, d.next = points.Point{}, false, "", 0
	decoders.Put(d)
}

// resourceDecoder gathers one body's samples. Names live in one arena and
// containers in one slice while decoding; batch turns them into a Batch
// with one allocation for all names and one for all containers.
type resourceDecoder struct {
	// scan is the scanner's buffer, kept between scrapes.
	scan []byte
	now  int64
	node points.Point
	// nodeCPUTimed: the node's timestamp came from its CPU sample.
	nodeCPUTimed bool
	// names holds every namespace, pod and container name of the body.
	names []byte
	pods  []podSpan
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
	// series is the series of the previous sample; next is the slot
	// expected for the next sample of that series. Kubelets list every
	// series' containers in one order, so after the first series a sample's
	// slot is found by one comparison rather than a map lookup.
	series string
	next   int
}

// span is a name in the arena.
type span struct{ start, end int }

type podSpan struct {
	namespace, name span
	containers      int
}

type slot struct {
	pod      int
	name     span
	point    points.Point
	cpuTimed bool
}

func (d *resourceDecoder) text(s span) []byte { return d.names[s.start:s.end] }

func (d *resourceDecoder) add(b []byte) span {
	start := len(d.names)
	d.names = append(d.names, b...)
	return span{start, len(d.names)}
}

type sampleLabels struct {
	container, namespace, pod []byte
}

func (d *resourceDecoder) line(l []byte) error {
	l = trimSpace(l)
	if len(l) == 0 || l[0] == '#' {
		return nil
	}
	nameEnd := 0
	for nameEnd < len(l) && l[nameEnd] != '{' && l[nameEnd] != ' ' && l[nameEnd] != '\t' {
		nameEnd++
	}
	if nameEnd == len(l) {
		return fmt.Errorf("sample %q has no value", truncate(l))
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
	default:
		return nil
	}
	rest := l[nameEnd:]
	var lbl sampleLabels
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], &lbl); err != nil {
			return fmt.Errorf("%s: %w", series, err)
		}
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
		setCPU(&d.node, &d.nodeCPUTimed, value, ts)
	case seriesNodeMemory:
		setMemory(&d.node, d.nodeCPUTimed, value, ts)
	default:
		if len(lbl.container) == 0 || len(lbl.namespace) == 0 || len(lbl.pod) == 0 {
			return fmt.Errorf("%s: sample lacks a container, namespace or pod label", series)
		}
		sl := &d.slots[d.slotFor(series, &lbl)]
		switch series {
		case seriesContainerCPU:
			setCPU(&sl.point, &sl.cpuTimed, value, ts)
		case seriesContainerMemory:
			setMemory(&sl.point, sl.cpuTimed, value, ts)
		case seriesContainerStart:
			sl.point.StartTime = int64(math.Round(value * 1e9))
		}
	}
	return nil
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
	case seriesNodeMemory, seriesContainerMemory:
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

func setCPU(p *points.Point, timed *bool, seconds float64, ts int64) {
	p.CPU = uint64(math.Round(seconds * 1e9))
	p.Has |= points.HasCPU
	p.Timestamp = ts
	*timed = true
}

func setMemory(p *points.Point, cpuTimed bool, bytes float64, ts int64) {
	p.Memory = uint64(math.Round(bytes))
	p.Has |= points.HasMemory
	if !cpuTimed {
		p.Timestamp = ts
	}
}

// slotFor finds or adds the container of a sample of series.
func (d *resourceDecoder) slotFor(series string, l *sampleLabels) int {
	if series != d.series {
		d.series, d.next = series, 0
	}
	if i := d.next; i < len(d.slots) {
		sl := &d.slots[i]
		p := &d.pods[sl.pod]
		if bytes.Equal(d.text(sl.name), l.container) && bytes.Equal(d.text(p.name), l.pod) && bytes.Equal(d.text(p.namespace), l.namespace) {
			d.next = i + 1
			return i
		}
	}
	d.key = append(append(append(append(append(d.key[:0], l.namespace...), 0), l.pod...), 0), l.container...)
	i, h, ok := find(d.index, maphash.Bytes(d.seed, d.key), func(i int) bool { return d.slotIs(i, l) })
	if !ok {
		i = d.addSlot(l)
		d.index[h] = i
	}
	d.next = i + 1
	return i
}

func (d *resourceDecoder) slotIs(i int, l *sampleLabels) bool {
	sl := &d.slots[i]
	return bytes.Equal(d.text(sl.name), l.container) && d.podIs(sl.pod, l)
}

func (d *resourceDecoder) podIs(i int, l *sampleLabels) bool {
	p := &d.pods[i]
	return bytes.Equal(d.text(p.name), l.pod) && bytes.Equal(d.text(p.namespace), l.namespace)
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

// addSlot adds a container, and its pod when new, in first-seen order.
func (d *resourceDecoder) addSlot(l *sampleLabels) int {
	pi := -1
	// A pod's containers usually come one after another: look at the pod
	// of the last slot before searching.
	if n := len(d.slots); n > 0 && d.podIs(d.slots[n-1].pod, l) {
		pi = d.slots[n-1].pod
	}
	if pi < 0 {
		d.key = append(append(append(d.key[:0], l.namespace...), 0), l.pod...)
		var (
			h  uint64
			ok bool
		)
		if pi, h, ok = find(d.podIndex, maphash.Bytes(d.seed, d.key), func(i int) bool { return d.podIs(i, l) }); !ok {
			pi = len(d.pods)
			d.podIndex[h] = pi
			d.pods = append(d.pods, podSpan{namespace: d.add(l.namespace), name: d.add(l.pod)})
		}
	}
	d.pods[pi].containers++
	d.slots = append(d.slots, slot{pod: pi, name: d.add(l.container)})
	return len(d.slots) - 1
}

// batch builds the node's Batch in a batch from the pool: one string holds
// every name, one array every container, each pod's containers in
// first-seen order.
func (d *resourceDecoder) batch(node string) *points.Batch {
	b := batches.Get().(*points.Batch)
	b.Reset(node, len(d.pods), len(d.slots))
	b.NodePoint = d.node
	if len(d.pods) == 0 {
		return b
	}
	names := string(d.names)
	str := func(s span) string { return names[s.start:s.end] }
	for i := range d.pods {
		p := &d.pods[i]
		b.AddPod(str(p.namespace), str(p.name), p.containers)
	}
	for i := range d.slots {
		sl := &d.slots[i]
		pt := sl.point
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

// parseLabels reads `name="value",...}` and returns what follows the brace.
// Only the labels we need are kept; values are unescaped.
func parseLabels(b []byte, out *sampleLabels) ([]byte, error) {
	for {
		b = skipSpace(b)
		if len(b) == 0 {
			return nil, errors.New("unterminated label set")
		}
		if b[0] == '}' {
			return b[1:], nil
		}
		eq := bytes.IndexByte(b, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("malformed label in %q", truncate(b))
		}
		name := bytes.TrimSpace(b[:eq])
		b = skipSpace(b[eq+1:])
		if len(b) == 0 || b[0] != '"' {
			return nil, fmt.Errorf("label %s: value is not quoted", name)
		}
		value, rest, err := parseQuoted(b[1:])
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", name, err)
		}
		switch string(name) {
		case "container":
			out.container = value
		case "namespace":
			out.namespace = value
		case "pod":
			out.pod = value
		}
		b = skipSpace(rest)
		if len(b) > 0 && b[0] == ',' {
			b = b[1:]
		}
	}
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

// parseValueAndTimestamp reads ` value [timestamp_ms]`. A missing timestamp
// is 0; the timestamp is returned in Unix nanoseconds.
func parseValueAndTimestamp(b []byte) (float64, int64, error) {
	b = skipSpace(b)
	end := 0
	for end < len(b) && b[end] != ' ' && b[end] != '\t' {
		end++
	}
	if end == 0 {
		return 0, 0, errors.New("missing value")
	}
	v, err := strconv.ParseFloat(string(b[:end]), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("value %q: %w", truncate(b[:end]), err)
	}
	b = skipSpace(b[end:])
	if len(b) == 0 {
		return v, 0, nil
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

// trimSpace drops blanks and a carriage return at both ends of a line.
func trimSpace(b []byte) []byte {
	b = skipSpace(b)
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
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
