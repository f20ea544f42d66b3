package kubelet

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// bodyLimit is --kubelet-max-response-bytes' default.
const bodyLimit = 16 << 20

// genBody is a body written as it is read, so a test holds none of it:
// head, then item(i) for i = 0, 1, ... while it fits, then pad up to size,
// then tail. A kubelet answer arrives the same way, through the limited
// reader.
type genBody struct {
	head, tail []byte
	item       func(dst []byte, i int) []byte
	pad        byte
	size       int

	out  []byte // bytes made but not yet read
	buf  []byte // item's buffer, reused
	pads []byte
	i    int
	sent int
	done bool
}

func (g *genBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(g.out) == 0 && !g.more() {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		m := copy(p[n:], g.out)
		g.out, n = g.out[m:], n+m
	}
	return n, nil
}

// more makes the next piece of the body.
func (g *genBody) more() bool {
	left := g.size - g.sent - len(g.tail)
	switch {
	case g.done:
		return false
	case g.i == 0 && g.sent == 0 && g.head != nil:
		g.out, g.head = g.head, nil
	default:
		if g.item != nil {
			if it := g.item(g.buf[:0], g.i); it != nil && len(it) <= left {
				g.out, g.buf = it, it
				g.i++
				break
			}
			g.item = nil
		}
		if left > 0 {
			if g.pads == nil {
				g.pads = bytes.Repeat([]byte{g.pad}, 32<<10)
				if g.pad == '#' {
					// Comment lines of 32 KiB.
					g.pads[len(g.pads)-1] = '\n'
				}
			}
			g.out = g.pads[:min(left, len(g.pads))]
			break
		}
		g.out, g.done = g.tail, true
	}
	g.sent += len(g.out)
	return true
}

// appendName appends a name of exactly n bytes, distinct for each i:
// prefix-i-xxx... Bodies are made without allocating, so that what a
// test counts is the decoder's.
func appendName(dst []byte, prefix string, n, i int) []byte {
	start := len(dst)
	dst = append(dst, prefix...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, '-')
	for len(dst)-start < n {
		dst = append(dst, 'x')
	}
	return dst
}

// hostileBodies are 16 MiB answers built to cost a decoder memory: many
// small entries, long names, deep nesting, and the largest answer the
// bounds accept (maxPods pods, maxContainers containers, names of
// maxNameBytes) padded to the limit.
type hostileBody struct {
	name     string
	body     func() io.Reader
	resource bool
	// accepted: the body decodes, into at least minPods pods.
	accepted bool
	minPods  int
}

func hostileBodies() []hostileBody {
	ms := requestTime.UnixMilli()
	ts := requestTime.Format(time.RFC3339)
	// The largest accepted answer: every pod and container the bounds
	// allow, names as long as the bound on their sum allows.
	perPod := maxContainers / maxPods
	nsLen, podLen := 40, 100
	cLen := (maxNameBytes/maxPods - nsLen - podLen) / perPod
	times := fmt.Appendf(nil, `"cpu":{"time":%q,"usageCoreNanoSeconds":1987654321000},"memory":{"time":%q,"workingSetBytes":19327352832}}`, ts, ts)
	summaryPod := func(dst []byte, i int) []byte {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"podRef":{"name":"`...)
		dst = appendName(dst, "p", podLen, i)
		dst = append(dst, `","namespace":"`...)
		dst = appendName(dst, "n", nsLen, i)
		dst = append(dst, `","uid":"0f4c6a2e-1b7d-4c1e-9a53-0d2f6b1e9c11"},"containers":[`...)
		for c := range perPod {
			if c > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":"`...)
			dst = appendName(dst, "c", cLen, c)
			dst = append(dst, `","startTime":"2026-11-23T12:00:04Z",`...)
			dst = append(dst, times...)
		}
		return append(dst, "]}"...)
	}
	samples := []struct{ series, value string }{
		{"container_cpu_usage_seconds_total", " 1987.654321 " + strconv.FormatInt(ms, 10)},
		{"container_memory_working_set_bytes", " 1.9327352832e+10 " + strconv.FormatInt(ms, 10)},
		{"container_start_time_seconds", " 1.7954352041234567e+09"},
	}
	resourcePod := func(dst []byte, i int) []byte {
		for c := range perPod {
			for _, sm := range samples {
				dst = append(dst, sm.series...)
				dst = append(dst, `{container="`...)
				dst = appendName(dst, "c", cLen, c)
				dst = append(dst, `",namespace="`...)
				dst = appendName(dst, "n", nsLen, i)
				dst = append(dst, `",pod="`...)
				dst = appendName(dst, "p", podLen, i)
				dst = append(dst, `"}`...)
				dst = append(dst, sm.value...)
				dst = append(dst, '\n')
			}
		}
		return dst
	}
	node := fmt.Sprintf(`{"node":{"nodeName":"worker-1","startTime":"2026-11-20T08:00:00Z","cpu":{"time":%q,"usageCoreNanoSeconds":123456789012345},"memory":{"time":%q,"workingSetBytes":274877906944}},"pods":[`, ts, ts)
	return []hostileBody{
		{name: "summary of empty pods", body: func() io.Reader {
			return &genBody{head: []byte(`{"pods":[`), item: func(d []byte, _ int) []byte { return append(d, "{},"...) }, pad: ' ', tail: []byte("{}]}"), size: bodyLimit}
		}},
		{name: "summary of small named pods", body: func() io.Reader {
			return &genBody{head: []byte(`{"pods":[`), item: func(d []byte, i int) []byte {
				d = appendName(append(d, `{"podRef":{"name":"`...), "p", 8, i)
				return append(d, `","namespace":"n"},"containers":[{"name":"c"}]},`...)
			}, pad: ' ', tail: []byte("{}]}"), size: bodyLimit}
		}},
		{name: "summary of one long string", accepted: true, body: func() io.Reader {
			return &genBody{head: []byte(node + `],"pad":"`), pad: 'x', tail: []byte(`"}`), size: bodyLimit}
		}},
		{name: "summary nested 10,000 deep", body: func() io.Reader {
			return &genBody{head: []byte(`{"node":{"x":`), item: func(d []byte, i int) []byte {
				if i >= maxJSONDepth-2 {
					return nil
				}
				return append(d, '[')
			}, pad: ' ', size: bodyLimit}
		}},
		{name: "summary at the bounds", accepted: true, minPods: maxPods, body: func() io.Reader {
			return &genBody{head: []byte(node), item: func(d []byte, i int) []byte {
				if i >= maxPods {
					return nil
				}
				return summaryPod(d, i)
			}, pad: ' ', tail: []byte(`]}`), size: bodyLimit}
		}},
		{name: "resource of many series", resource: true, body: func() io.Reader {
			return &genBody{item: func(d []byte, i int) []byte {
				d = appendName(append(d, `container_start_time_seconds{container="c",namespace="n",pod="`...), "p", 8, i)
				return append(d, "\"} 1\n"...)
			}, pad: '#', size: bodyLimit}
		}},
		{name: "resource of long labels", resource: true, accepted: true, minPods: 200, body: func() io.Reader {
			return &genBody{item: func(d []byte, i int) []byte {
				d = appendName(append(d, `container_start_time_seconds{container="c",namespace="n",pod="`...), "p", 8, i)
				d = appendName(append(d, `",id="`...), "id", maxResourceLine-200, i)
				return append(d, "\"} 1\n"...)
			}, pad: '#', size: bodyLimit}
		}},
		{name: "resource of long pod names", resource: true, body: func() io.Reader {
			return &genBody{item: func(d []byte, i int) []byte {
				d = appendName(append(d, `container_start_time_seconds{container="c",namespace="n",pod="`...), "p", maxResourceLine-200, i)
				return append(d, "\"} 1\n"...)
			}, pad: '#', size: bodyLimit}
		}},
		{name: "resource at the bounds", resource: true, accepted: true, minPods: maxPods, body: func() io.Reader {
			return &genBody{head: fmt.Appendf(nil, "node_cpu_usage_seconds_total 123456.789012345 %d\nnode_memory_working_set_bytes 2.74877906944e+11 %d\n", ms, ms), item: func(d []byte, i int) []byte {
				if i >= maxPods {
					return nil
				}
				return resourcePod(d, i)
			}, pad: '#', size: bodyLimit}
		}},
	}
}

// heapObjects is the heap's objects, live and not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// allocated is every byte the heap ever allocated.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func decodeBody(r io.Reader, resource bool) (*points.Batch, error) {
	if resource {
		return DecodeResource(r, "worker-1", requestTime)
	}
	return DecodeSummary(r, "worker-1", requestTime)
}

// maxDecodeBytes bounds what one decode of any body may allocate, so what
// it may add to the heap: half the body limit.
const maxDecodeBytes = bodyLimit / 2

// TestDecodeMemoryBounded decodes each hostile body and counts the bytes
// it allocates: an upper bound on how much one scrape can grow the heap,
// garbage included. It must stay under maxDecodeBytes, whatever the body.
func TestDecodeMemoryBounded(t *testing.T) {
	for _, tt := range hostileBodies() {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.body()
			runtime.GC()
			base := heapObjects()
			peak := sampleHeap()
			before := allocated()
			b, err := decodeBody(r, tt.resource)
			used := allocated() - before
			top := peak()
			if tt.accepted != (err == nil) {
				t.Errorf("accepted = %v (err %v), want %v", err == nil, err, tt.accepted)
			}
			if err == nil && len(b.Pods) < tt.minPods {
				t.Errorf("decoded %d pods, want at least %d", len(b.Pods), tt.minPods)
			}
			t.Logf("%s: %.2f MiB allocated (%.2fx the 16 MiB body), sampled heap objects peaked %.2f MiB above the start; err %v",
				tt.name, float64(used)/(1<<20), float64(used)/bodyLimit, float64(top-min(top, base))/(1<<20), err)
			if used > maxDecodeBytes {
				t.Errorf("decoding allocated %d bytes, want at most %d", used, maxDecodeBytes)
			}
		})
	}
}

// sampleHeap samples the heap's objects every millisecond until the
// returned function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		if h := heapObjects(); h > peak.Load() {
			peak.Store(h)
		}
		return peak.Load()
	}
}

// containerMemoryLimit is what the manifests give the server
// (manifests/base: 200Mi; the deployment sets no limit above its request).
const containerMemoryLimit = 200 << 20

// TestConcurrentHostileDecodesFitMemoryLimit decodes 64 hostile 16 MiB
// bodies at once (--kubelet-max-concurrency's default), the heap sampled
// throughout, with the process's GOGC of 25: the heap's objects must stay
// under the container's memory limit. Were they to pass it, the bodies'
// reads fail at once, so a failing run does not take the machine's memory.
func TestConcurrentHostileDecodesFitMemoryLimit(t *testing.T) {
	all := hostileBodies()
	var largest []hostileBody
	for _, b := range all {
		if b.minPods > 0 && strings.Contains(b.name, "at the bounds") {
			largest = append(largest, b)
		}
	}
	for _, tt := range []struct {
		name   string
		bodies []hostileBody
	}{{"every hostile body", all}, {"the largest accepted bodies", largest}} {
		t.Run(tt.name, func(t *testing.T) { concurrentDecodes(t, tt.bodies) })
	}
}

func concurrentDecodes(t *testing.T, bodies []hostileBody) {
	const decoders = 64
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	base := heapObjects()
	var over atomic.Bool
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			h := heapObjects()
			if h > peak.Load() {
				peak.Store(h)
			}
			if h > containerMemoryLimit {
				over.Store(true)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, decoders)
	for i := range decoders {
		tt := bodies[i%len(bodies)]
		r := &guardedReader{r: tt.body(), over: &over}
		wg.Go(func() {
			<-start
			b, err := decodeBody(r, tt.resource)
			if tt.accepted != (err == nil) && !over.Load() {
				errs[i] = fmt.Errorf("%s: accepted = %v (err %v), want %v", tt.name, err == nil, err, tt.accepted)
			}
			if b != nil {
				recycle(b)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	close(stop)
	<-sampled
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	p := peak.Load()
	t.Logf("%d concurrent 16 MiB hostile decodes in %v: heap objects peaked at %.1f MiB (%.1f MiB before), limit %d MiB", decoders, time.Since(began).Round(time.Millisecond), float64(p)/(1<<20), float64(base)/(1<<20), containerMemoryLimit>>20)
	if over.Load() || p > containerMemoryLimit {
		t.Errorf("heap objects reached %d bytes, past the container's limit of %d", p, containerMemoryLimit)
	}
}

// guardedReader fails once over is set: a decode that would take the
// process past the limit stops there.
type guardedReader struct {
	r    io.Reader
	over *atomic.Bool
}

func (g *guardedReader) Read(p []byte) (int, error) {
	if g.over.Load() {
		return 0, fmt.Errorf("heap past the container memory limit")
	}
	// Reads of a real body come from the network in pieces.
	return g.r.Read(p[:min(len(p), 32<<10)])
}

// TestSlotSize guards what a container costs the resource decoder: 64
// bytes, as before swap; a body at the bounds holds 10,000 of them.
func TestSlotSize(t *testing.T) {
	if got := unsafe.Sizeof(slot{}); got != 64 {
		t.Errorf("slot is %d bytes, want 64", got)
	}
}
