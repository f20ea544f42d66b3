package api

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
)

// wireTestList is a list with what can vary: labels or none, a zero
// creation time, characters encoding/json escapes, long names, quantities
// from zero to huge, windows below and above a second.
func wireTestList(codecsEncodings *wireEncodings) *podList {
	created := metav1.NewTime(time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC))
	pods := []*podmeta.Pod{
		{Namespace: "shop", Name: "web-1", CreationTimestamp: created, Labels: map[string]string{"app": "web", "tier": "front", "a.b/c": "x_y-z.1"}},
		{Namespace: "shop", Name: "nolabels"},
		{Namespace: "ops", Name: "odd", CreationTimestamp: created, Labels: map[string]string{"q": "<&>\"\\é\u2028"}},
		{Namespace: "long", Name: string(bytes.Repeat([]byte("n"), 250)), Labels: map[string]string{"k": string(bytes.Repeat([]byte("v"), 63))}},
	}
	ts := time.Date(2026, 11, 25, 19, 0, 7, 123456789, time.UTC).UnixNano()
	mk := func(cpu, mem uint64) points.Usage {
		return points.Usage{Timestamp: ts, Window: int64(15*time.Second + 3*time.Millisecond), NanoCores: cpu, Memory: mem}
	}
	usage := []points.PodUsage{
		{Index: 0, Timestamp: ts, Window: int64(15 * time.Second), Containers: []points.ContainerUsage{
			{Name: "app", Usage: mk(50_000_000, 64<<20)}, {Name: "sidecar", Usage: mk(123_456, 1500)}}},
		{Index: 1, Timestamp: ts - 3e9, Window: int64(900 * time.Millisecond), Containers: []points.ContainerUsage{
			{Name: "c", Usage: mk(0, 0)}}},
		{Index: 2, Timestamp: ts, Window: int64(time.Hour), Containers: []points.ContainerUsage{
			{Name: "big", Usage: mk(1e15, 1<<50+7)}, {Name: "one", Usage: mk(1e9, 1024)}, {Name: "odd", Usage: mk(999_999_999, 1023)}}},
		{Index: 3, Timestamp: ts, Window: int64(15 * time.Second), Containers: []points.ContainerUsage{
			{Name: "x", Usage: mk(7, 3<<30)}}},
	}
	return &podList{pods: pods, usage: usage, encodings: codecsEncodings}
}

// TestWireEncodingMatchesCodecs: for protobuf and JSON of both versions,
// our encoders write exactly the bytes the codecs write for the same list.
func TestWireEncodingMatchesCodecs(t *testing.T) {
	_, codecs := NewScheme()
	enc := newWireEncodings(codecs)
	l := wireTestList(enc)
	// Random quantities too, to cover the canonical forms.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		cpu := r.Uint64N(1 << uint(r.IntN(50)+1))
		mem := r.Uint64N(1 << uint(r.IntN(60)+1))
		if i%3 == 0 {
			mem = mem &^ 1023
		}
		l.usage[3].Containers = append(l.usage[3].Containers, points.ContainerUsage{Name: "r", Usage: points.Usage{NanoCores: cpu, Memory: mem}})
	}
	for _, gv := range []schema.GroupVersion{metricsv1.SchemeGroupVersion, v1beta1.SchemeGroupVersion} {
		for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
			t.Run(gv.Version+"/"+mediaType, func(t *testing.T) {
				info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
				if !ok {
					t.Fatalf("no serializer for %s", mediaType)
				}
				codec := codecs.EncoderForVersion(info.Serializer, gv)
				if _, ok := enc.lookup(codec.Identifier()); !ok {
					t.Fatalf("the %s encoder of %s is not one of ours", mediaType, gv)
				}
				var want, got bytes.Buffer
				if err := codec.Encode(l.GetObject(), &want); err != nil {
					t.Fatal(err)
				}
				before := enc.written.Load()
				if err := codec.Encode(l, &got); err != nil {
					t.Fatal(err)
				}
				if enc.written.Load() != before+1 {
					t.Fatal("the codec did not hand the list to our encoder")
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("bytes differ from the codec's (%d vs %d bytes)\n got: %q\nwant: %q", got.Len(), want.Len(), clip(got.Bytes()), clip(want.Bytes()))
				}
			})
		}
	}
	// An encoder that is not ours (pretty JSON) gets the internal list.
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	pretty := codecs.EncoderForVersion(info.PrettySerializer, v1beta1.SchemeGroupVersion)
	before := enc.written.Load()
	var want, got bytes.Buffer
	if err := pretty.Encode(l.GetObject(), &want); err != nil {
		t.Fatal(err)
	}
	if err := pretty.Encode(l, &got); err != nil {
		t.Fatal(err)
	}
	if enc.written.Load() != before || !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("pretty JSON: written %d times, equal %v; want the codec's own output", enc.written.Load()-before, bytes.Equal(got.Bytes(), want.Bytes()))
	}
}

func clip(b []byte) []byte {
	if len(b) > 600 {
		return b[:600]
	}
	return b
}

// TestWireEncodingOverHTTP: a real generic API server answers every kind
// of pod list request with the same bytes with and without our encoders,
// and uses them for plain protobuf and JSON only.
func TestWireEncodingOverHTTP(t *testing.T) {
	plain, _ := serveAPIWith(t, false)
	wired, enc := serveAPIWith(t, true)
	get := func(t *testing.T, base, path, accept string) []byte {
		t.Helper()
		code, b := httpGet(t, base+path, accept)
		if code != http.StatusOK {
			t.Fatalf("%s %s: status %d: %s", path, accept, code, b)
		}
		return b
	}
	tests := []struct {
		path, accept string
		ours         bool
	}{
		{"/apis/metrics.k8s.io/v1beta1/pods", "application/vnd.kubernetes.protobuf", true},
		{"/apis/metrics.k8s.io/v1/pods", "application/vnd.kubernetes.protobuf", true},
		{"/apis/metrics.k8s.io/v1beta1/pods", "application/json", true},
		{"/apis/metrics.k8s.io/v1/namespaces/shop/pods?labelSelector=app%3Dweb", "application/json", true},
		{"/apis/metrics.k8s.io/v1beta1/pods?pretty=true", "application/json", false},
		{"/apis/metrics.k8s.io/v1beta1/pods", "application/yaml", false},
		{"/apis/metrics.k8s.io/v1beta1/pods", "application/json;as=Table;v=v1;g=meta.k8s.io", false},
		{"/apis/metrics.k8s.io/v1beta1/pods", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", false},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.accept, func(t *testing.T) {
			before := enc.written.Load()
			want := get(t, plain.URL, tt.path, tt.accept)
			got := get(t, wired.URL, tt.path, tt.accept)
			if !bytes.Equal(got, want) {
				t.Errorf("answers differ\n got: %q\nwant: %q", clip(got), clip(want))
			}
			if used := enc.written.Load() > before; used != tt.ours {
				t.Errorf("our encoder used: %v, want %v", used, tt.ours)
			}
		})
	}
}
