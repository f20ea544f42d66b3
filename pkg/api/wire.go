package api

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
)

// The encoders below write a podList as the codecs write the versioned
// PodMetricsList (tests compare them byte for byte): protobuf inside the
// runtime.Unknown envelope, and JSON as encoding/json renders the types.

const podListKind = "PodMetricsList"

// protoMagic starts every Kubernetes protobuf message.
var protoMagic = []byte{'k', '8', 's', 0}

// wireScratch holds the buffers one encoding reuses for every item.
type wireScratch struct {
	item, meta, container, entry, num []byte
	keys                              []string
}

func writePodListProtobuf(w io.Writer, l *podList, apiVersion string) error {
	var s wireScratch
	// The list body: ListMeta with its three empty strings, then items.
	raw := make([]byte, 0, 64+len(l.usage)*200)
	raw = append(raw, 0x0a, 0x06, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00)
	for i := range l.usage {
		u := &l.usage[i]
		s.item = protoPodItem(s.item[:0], l.pods[u.Index], u, &s)
		raw = protoBytes(raw, 0x12, s.item)
	}
	// The runtime.Unknown envelope: typeMeta, raw, and two empty strings.
	var tm []byte
	tm = protoString(tm, 0x0a, apiVersion)
	tm = protoString(tm, 0x12, podListKind)
	head := append([]byte(nil), protoMagic...)
	head = protoBytes(head, 0x0a, tm)
	head = append(head, 0x12)
	head = binary.AppendUvarint(head, uint64(len(raw)))
	for _, b := range [][]byte{head, raw, {0x1a, 0x00, 0x22, 0x00}} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// protoPodItem appends one PodMetrics message (without its tag).
func protoPodItem(b []byte, pod *podmeta.Pod, u *points.PodUsage, s *wireScratch) []byte {
	// ObjectMeta: the codec writes every plain field, empty or not.
	m := s.meta[:0]
	m = protoString(m, 0x0a, pod.Name)
	m = append(m, 0x12, 0x00) // generateName
	m = protoString(m, 0x1a, pod.Namespace)
	m = append(m, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00) // selfLink, uid, resourceVersion, generation
	m = protoTime(m, 0x42, pod.CreationTimestamp.Time)
	s.keys = sortedLabelKeys(s.keys[:0], pod.Labels)
	for _, k := range s.keys {
		e := s.entry[:0]
		e = protoString(e, 0x0a, k)
		e = protoString(e, 0x12, pod.Labels[k])
		s.entry = e
		m = protoBytes(m, 0x5a, e)
	}
	s.meta = m
	b = protoBytes(b, 0x0a, m)
	b = protoTime(b, 0x12, time.Unix(0, u.Timestamp))
	b = append(b, 0x1a)
	b = binary.AppendUvarint(b, uint64(1+uvarintLen(uint64(u.Window))))
	b = append(b, 0x08)
	b = binary.AppendUvarint(b, uint64(u.Window))
	for i := range u.Containers {
		c := &u.Containers[i]
		cb := s.container[:0]
		cb = protoString(cb, 0x0a, c.Name)
		cb = protoUsage(cb, 0x12, c.Usage, s)
		s.container = cb
		b = protoBytes(b, 0x22, cb)
	}
	return b
}

// usageKeys are the usage map's entries in key order, as the codecs sort
// them: cpu, ephemeral-storage, memory, swap. Each but cpu and memory is
// written only when has says it was reported.
var usageKeys = [...]struct {
	key string
	has points.Has
	q   func([]byte, points.Usage) []byte
}{
	{"cpu", 0, appendCPU},
	{"ephemeral-storage", points.HasEphemeralStorage, appendEphemeralStorage},
	{"memory", 0, appendMemory},
	{"swap", points.HasSwap, appendSwap},
}

// protoUsage appends the usage map: entries sorted by key.
func protoUsage(b []byte, tag byte, u points.Usage, s *wireScratch) []byte {
	for _, r := range &usageKeys {
		if r.has != 0 && u.Has&r.has == 0 {
			continue
		}
		s.num = r.q(s.num[:0], u)
		e := s.entry[:0]
		e = protoString(e, 0x0a, r.key)
		// Quantity is a message with one string field.
		e = append(e, 0x12)
		e = binary.AppendUvarint(e, uint64(1+uvarintLen(uint64(len(s.num)))+len(s.num)))
		e = protoBytes(e, 0x0a, s.num)
		s.entry = e
		b = protoBytes(b, tag, e)
	}
	return b
}

// protoTime appends a metav1.Time field: seconds and a zero nanos, or an
// empty message for the zero time.
func protoTime(b []byte, tag byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, tag, 0x00)
	}
	secs := uint64(t.Unix())
	b = append(b, tag, byte(1+uvarintLen(secs)+2), 0x08)
	b = binary.AppendUvarint(b, secs)
	return append(b, 0x10, 0x00)
}

func protoString(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func protoBytes(b []byte, tag byte, v []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendCPU and appendMemory write the canonical quantity strings the API
// serves (nanocores in decimal SI, bytes in binary SI) without building a
// resource.Quantity; values outside the plain cases go to the library.
func appendCPU(b []byte, u points.Usage) []byte {
	if u.NanoCores > math.MaxInt64/1000 {
		return appendQuantity(b, resource.NewScaledQuantity(int64(u.NanoCores), resource.Nano))
	}
	return appendDecimalSI(b, u.NanoCores, -9)
}

func appendMemory(b []byte, u points.Usage) []byte { return appendBytes(b, u.Memory) }

func appendSwap(b []byte, u points.Usage) []byte { return appendBytes(b, u.Swap) }

func appendEphemeralStorage(b []byte, u points.Usage) []byte {
	return appendBytes(b, u.EphemeralStorage)
}

// appendBytes writes a count of bytes as a binary SI quantity.
func appendBytes(b []byte, m uint64) []byte {
	switch {
	case m > math.MaxInt64/1000:
		return appendQuantity(b, resource.NewQuantity(int64(m), resource.BinarySI))
	case m < 1024:
		// Below 1Ki the library switches to decimal SI.
		return appendDecimalSI(b, m, 0)
	}
	exp := 0
	for m%1024 == 0 && exp < len(binarySuffixes)-1 {
		m /= 1024
		exp++
	}
	b = strconv.AppendUint(b, m, 10)
	return append(b, binarySuffixes[exp]...)
}

var binarySuffixes = []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}

// decimalSuffixes maps exponents -9..18, in steps of 3, to SI suffixes.
var decimalSuffixes = []string{"n", "u", "m", "", "k", "M", "G", "T", "P", "E"}

// appendDecimalSI writes v x 10^exp as the library's canonical decimal SI
// form: trailing zeros moved into the exponent, the exponent brought down
// to a multiple of three, then its suffix.
func appendDecimalSI(b []byte, v uint64, exp int) []byte {
	if v == 0 {
		return append(b, '0')
	}
	for v%10 == 0 {
		v /= 10
		exp++
	}
	for exp%3 != 0 {
		v *= 10
		exp--
	}
	b = strconv.AppendUint(b, v, 10)
	if i := exp/3 + 3; i >= 0 && i < len(decimalSuffixes) {
		return append(b, decimalSuffixes[i]...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, int64(exp), 10)
}

func appendQuantity(b []byte, q *resource.Quantity) []byte {
	return append(b, q.String()...)
}

func sortedLabelKeys(keys []string, labels map[string]string) []string {
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func writePodListJSON(w io.Writer, l *podList, apiVersion string) error {
	var s wireScratch
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"kind":"PodMetricsList","apiVersion":`...)
	b = jsonString(b, apiVersion)
	b = append(b, `,"metadata":{},"items":[`...)
	for i := range l.usage {
		if i > 0 {
			b = append(b, ',')
		}
		u := &l.usage[i]
		b = jsonPodItem(b, l.pods[u.Index], u, &s)
		if len(b) > 48<<10 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "]}\n"...)
	_, err := w.Write(b)
	return err
}

func jsonPodItem(b []byte, pod *podmeta.Pod, u *points.PodUsage, s *wireScratch) []byte {
	b = append(b, `{"metadata":{`...)
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if pod.Name != "" {
		field("name")
		b = jsonString(b, pod.Name)
	}
	if pod.Namespace != "" {
		field("namespace")
		b = jsonString(b, pod.Namespace)
	}
	if !pod.CreationTimestamp.IsZero() {
		field("creationTimestamp")
		b = jsonTime(b, pod.CreationTimestamp.Time)
	}
	if len(pod.Labels) > 0 {
		field("labels")
		b = append(b, '{')
		s.keys = sortedLabelKeys(s.keys[:0], pod.Labels)
		for i, k := range s.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonString(b, k)
			b = append(b, ':')
			b = jsonString(b, pod.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `},"timestamp":`...)
	b = jsonTime(b, time.Unix(0, u.Timestamp))
	b = append(b, `,"window":`...)
	b = jsonString(b, time.Duration(u.Window).String())
	b = append(b, `,"containers":[`...)
	for i := range u.Containers {
		c := &u.Containers[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = jsonString(b, c.Name)
		b = append(b, `,"usage":{`...)
		first := true
		for _, r := range &usageKeys {
			if r.has != 0 && c.Has&r.has == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, r.key...)
			b = append(b, `":"`...)
			b = r.q(b, c.Usage)
			b = append(b, '"')
		}
		b = append(b, `}}`...)
	}
	return append(b, "]}"...)
}

// jsonTime writes a metav1.Time: RFC 3339 in UTC, whole seconds.
func jsonTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// jsonString quotes s as encoding/json does (HTML-safe): plain ASCII is
// copied, anything else goes through encoding/json itself.
func jsonString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, err := json.Marshal(s)
			if err != nil {
				return strconv.AppendQuote(b, s)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
