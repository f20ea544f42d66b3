package api

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points/pointstest"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// benchPodStorage serves a fleet of nodes x 30 pods x 2 containers from a
// real store that has seen two cycles.
func benchPodStorage(b *testing.B, nodes int) (*podStorage, int) {
	b.Helper()
	f := pointstest.New(nodes, 30, 2)
	st := storage.NewStore(storage.Options{})
	for _, t := range []int64{100, 115} {
		f.At(t)
		for _, batch := range f.Batches {
			st.Store(batch)
		}
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range f.Pods {
		if err := idx.Add(&podmeta.Pod{Namespace: p.Namespace, Name: p.Name, Labels: map[string]string{"app": "bench"}}); err != nil {
			b.Fatal(err)
		}
	}
	fresh := newFreshness(nil, clocktesting.NewFakeClock(sampleTime))
	_, codecs := NewScheme()
	return &podStorage{metrics: st, lister: cache.NewGenericLister(idx, metrics.Resource("pods")), freshness: fresh, encodings: newWireEncodings(codecs)}, len(f.Pods)
}

// BenchmarkPodList lists every pod's metrics (store, lister, sorting), and
// then also converts and encodes the list as v1beta1 the way the API server
// answers, in protobuf and in JSON.
func BenchmarkPodList(b *testing.B) {
	_, codecs := NewScheme()
	// As a request through WithWireEncoding: the list is written by our
	// encoders; "internal" below measures the codecs' path for comparison.
	ctx := context.WithValue(genericapirequest.WithNamespace(context.Background(), metav1.NamespaceAll), wireKey{}, true)
	for _, nodes := range []int{100, 1000, 5000} {
		s, pods := benchPodStorage(b, nodes)
		list := func(b *testing.B) runtime.Object {
			obj, err := s.List(ctx, &metainternalversion.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if n := len(obj.(*podList).usage); n != pods {
				b.Fatalf("listed %d pods, want %d", n, pods)
			}
			return obj
		}
		b.Run(fmt.Sprintf("pods=%d/list", pods), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				list(b)
			}
		})
		for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
			info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
			if !ok {
				b.Fatalf("no serializer for %s", mediaType)
			}
			enc := codecs.EncoderForVersion(info.Serializer, v1beta1.SchemeGroupVersion)
			var buf bytes.Buffer
			format := map[bool]string{false: "protobuf", true: "json"}[info.EncodesAsText]
			b.Run(fmt.Sprintf("pods=%d/list+encode-%s", pods, format), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := enc.Encode(list(b), &buf); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len())/float64(pods), "bytes/pod")
			})
			b.Run(fmt.Sprintf("pods=%d/list+encode-%s-internal", pods, format), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := enc.Encode(list(b).(*podList).GetObject(), &buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
