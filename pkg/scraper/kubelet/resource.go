package kubelet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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
	d.batch = &points.Batch{Node: node}
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
	if d.batch.NodePoint.Has == 0 && len(d.batch.Pods) == 0 {
		return nil, errors.New("the body holds none of the resource metrics series (node_cpu_usage_seconds_total, container_cpu_usage_seconds_total, ...)")
	}
	// A container seen only in container_start_time_seconds (terminated,
	// or not measured yet) still gets a sample time.
	for i := range d.batch.Pods {
		for j := range d.batch.Pods[i].Containers {
			if c := &d.batch.Pods[i].Containers[j]; c.Timestamp == 0 {
				c.Timestamp = d.now
			}
		}
	}
	return d.batch, nil
}

// decoders keeps decoders between scrapes: their maps and buffers keep
// their sizes, so a scrape does not grow them again from nothing.
var decoders = sync.Pool{New: func() any {
	return &resourceDecoder{pods: map[string]int{}, cpuTimed: map[[2]int]bool{}, scan: make([]byte, 0, 16<<10)}
}}

// release clears the decoder for the next scrape and returns it to the pool.
func (d *resourceDecoder) release() {
	clear(d.pods)
	clear(d.cpuTimed)
	d.batch, d.key, d.nodeCPUTimed = nil, d.key[:0], false
	decoders.Put(d)
}

type resourceDecoder struct {
	// scan is the scanner's buffer, kept between scrapes.
	scan  []byte
	batch *points.Batch
	// pods indexes batch.Pods by namespace + "\x00" + name.
	pods map[string]int
	key  []byte
	now  int64
	// cpuTimed marks containers whose timestamp came from a CPU sample, by
	// pod index and container index.
	cpuTimed     map[[2]int]bool
	nodeCPUTimed bool
}

type sampleLabels struct {
	container, namespace, pod []byte
}

func (d *resourceDecoder) line(l []byte) error {
	l = bytes.TrimSpace(l)
	if len(l) == 0 || l[0] == '#' {
		return nil
	}
	nameEnd := bytes.IndexAny(l, "{ \t")
	if nameEnd < 0 {
		return fmt.Errorf("sample %q has no value", truncate(l))
	}
	name := l[:nameEnd]
	switch string(name) {
	case seriesNodeCPU, seriesNodeMemory, seriesContainerCPU, seriesContainerMemory, seriesContainerStart:
	default:
		return nil
	}
	rest := l[nameEnd:]
	var lbl sampleLabels
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], &lbl); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	value, ts, err := parseValueAndTimestamp(rest)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if math.IsNaN(value) || math.IsInf(value, 0) || value < 0 {
		return fmt.Errorf("%s: value %v is not a finite non-negative number", name, value)
	}
	if value*1e9 >= math.MaxUint64 {
		return fmt.Errorf("%s: value %v is out of range", name, value)
	}
	if ts == 0 {
		ts = d.now
	}
	switch string(name) {
	case seriesNodeCPU:
		d.setCPU(&d.batch.NodePoint, &d.nodeCPUTimed, value, ts)
	case seriesNodeMemory:
		d.setMemory(&d.batch.NodePoint, d.nodeCPUTimed, value, ts)
	default:
		if len(lbl.container) == 0 || len(lbl.namespace) == 0 || len(lbl.pod) == 0 {
			return fmt.Errorf("%s: sample lacks a container, namespace or pod label", name)
		}
		pi, ci := d.container(&lbl)
		p := &d.batch.Pods[pi].Containers[ci].Point
		key := [2]int{pi, ci}
		timed := d.cpuTimed[key]
		switch string(name) {
		case seriesContainerCPU:
			d.setCPU(p, &timed, value, ts)
			d.cpuTimed[key] = timed
		case seriesContainerMemory:
			d.setMemory(p, timed, value, ts)
		case seriesContainerStart:
			start := value * 1e9
			if start > math.MaxInt64 {
				return fmt.Errorf("%s: start time %v out of range", name, value)
			}
			p.StartTime = int64(math.Round(start))
		}
	}
	return nil
}

func (d *resourceDecoder) setCPU(p *points.Point, timed *bool, seconds float64, ts int64) {
	p.CPU = uint64(math.Round(seconds * 1e9))
	p.Has |= points.HasCPU
	p.Timestamp = ts
	*timed = true
}

func (d *resourceDecoder) setMemory(p *points.Point, cpuTimed bool, bytes float64, ts int64) {
	p.Memory = uint64(math.Round(bytes))
	p.Has |= points.HasMemory
	if !cpuTimed {
		p.Timestamp = ts
	}
}

// container finds or adds the pod and container of a sample, keeping
// first-seen order.
func (d *resourceDecoder) container(l *sampleLabels) (int, int) {
	d.key = append(append(append(d.key[:0], l.namespace...), 0), l.pod...)
	pi, ok := d.pods[string(d.key)]
	if !ok {
		pi = len(d.batch.Pods)
		d.pods[string(d.key)] = pi
		d.batch.Pods = append(d.batch.Pods, points.Pod{Namespace: string(l.namespace), Name: string(l.pod)})
	}
	pod := &d.batch.Pods[pi]
	for ci := range pod.Containers {
		if pod.Containers[ci].Name == string(l.container) {
			return pi, ci
		}
	}
	pod.Containers = append(pod.Containers, points.Container{Name: string(l.container)})
	return pi, len(pod.Containers) - 1
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
	end := bytes.IndexAny(b, " \t")
	if end < 0 {
		end = len(b)
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
