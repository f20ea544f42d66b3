package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// podList is a pod metrics list as the store answered it: the pods, sorted,
// and their compact usage. The API server encodes it through CacheEncode,
// which writes the versioned list straight to the wire for the encoders in
// encodings (protobuf and JSON of v1 and v1beta1, byte for byte what the
// codecs would write) and hands anything else (pretty JSON, YAML, audit)
// the internal list GetObject builds. Listing 150,000 pods then allocates
// a few buffers instead of two maps per container.
type podList struct {
	pods      []*podmeta.Pod
	usage     []points.PodUsage
	encodings *wireEncodings

	once sync.Once
	obj  *metrics.PodMetricsList
}

var _ runtime.CacheableObject = (*podList)(nil)

func (l *podList) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (l *podList) DeepCopyObject() runtime.Object { return l.GetObject().DeepCopyObject() }

// GetObject returns the list as internal objects, built once.
func (l *podList) GetObject() runtime.Object {
	l.once.Do(func() {
		l.obj = &metrics.PodMetricsList{Items: make([]metrics.PodMetrics, len(l.usage))}
		for i := range l.usage {
			l.obj.Items[i] = podMetricsOf(l.pods[l.usage[i].Index], &l.usage[i])
		}
	})
	return l.obj
}

// CacheEncode writes the list in the encoding id names when it is one of
// ours, else lets the codec encode the internal list.
func (l *podList) CacheEncode(id runtime.Identifier, encode func(runtime.Object, io.Writer) error, w io.Writer) error {
	if f, ok := l.encodings.lookup(id); ok {
		l.encodings.written.Add(1)
		if f.protobuf {
			return writePodListProtobuf(w, l, f.apiVersion)
		}
		return writePodListJSON(w, l, f.apiVersion)
	}
	return encode(l.GetObject(), w)
}

// podMetricsOf builds the internal object of one pod.
func podMetricsOf(pod *podmeta.Pod, u *points.PodUsage) metrics.PodMetrics {
	m := metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			Labels:            pod.Labels,
			CreationTimestamp: pod.CreationTimestamp,
		},
		Timestamp:  metav1.NewTime(time.Unix(0, u.Timestamp)),
		Window:     metav1.Duration{Duration: time.Duration(u.Window)},
		Containers: make([]metrics.ContainerMetrics, len(u.Containers)),
	}
	for i, c := range u.Containers {
		m.Containers[i] = metrics.ContainerMetrics{Name: c.Name, Usage: storage.ResourceList(c.Usage)}
	}
	return m
}

// wireFormat is one encoding podList writes itself.
type wireFormat struct {
	protobuf   bool
	apiVersion string
}

// wireEncodings maps the identifiers of the codecs' plain protobuf and
// JSON encoders of both versions to what they write.
type wireEncodings struct {
	byID map[runtime.Identifier]wireFormat
	// written counts the lists written by our encoders.
	written atomic.Int64
}

func newWireEncodings(codecs serializer.CodecFactory) *wireEncodings {
	e := &wireEncodings{byID: map[runtime.Identifier]wireFormat{}}
	for _, gv := range []schema.GroupVersion{metricsv1.SchemeGroupVersion, v1beta1.SchemeGroupVersion} {
		for _, info := range codecs.SupportedMediaTypes() {
			var proto bool
			switch info.MediaType {
			case runtime.ContentTypeProtobuf:
				proto = true
			case runtime.ContentTypeJSON:
			default:
				continue
			}
			id := codecs.EncoderForVersion(info.Serializer, gv).Identifier()
			e.byID[id] = wireFormat{protobuf: proto, apiVersion: gv.String()}
		}
	}
	return e
}

func (e *wireEncodings) lookup(id runtime.Identifier) (wireFormat, bool) {
	if e == nil {
		return wireFormat{}, false
	}
	f, ok := e.byID[id]
	return f, ok
}

type wireKey struct{}

// WithWireEncoding marks requests whose answer may be written by the
// list's own encoders: all but those asking the server to transform the
// object first (Accept with an as= parameter, such as
// PartialObjectMetadataList; tables are rendered from the list itself).
func WithWireEncoding(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept"), "as=") {
			r = r.WithContext(context.WithValue(r.Context(), wireKey{}, true))
		}
		h.ServeHTTP(w, r)
	})
}

func wireEncodingAllowed(ctx context.Context) bool {
	ok, _ := ctx.Value(wireKey{}).(bool)
	return ok
}
