package api

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/metrics/pkg/apis/metrics"
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
		return points.Usage{NanoCores: cpu, Memory: mem}
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
	// Swap and ephemeral storage where reported: zero, small, huge, alone
	// or together; absent elsewhere.
	extra := func(c *points.ContainerUsage, has points.Has, swap, eph uint64) {
		c.Has, c.Swap, c.EphemeralStorage = has, swap, eph
	}
	extra(&usage[0].Containers[0], points.HasSwap, 0, 0)
	extra(&usage[0].Containers[1], points.HasSwap|points.HasEphemeralStorage, 1<<20+1, 512)
	extra(&usage[2].Containers[0], points.HasEphemeralStorage, 0, 1<<62+3)
	extra(&usage[2].Containers[2], points.HasSwap, 1<<40, 0)
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
		u := points.Usage{NanoCores: cpu, Memory: mem, Has: points.Has(r.IntN(4)) << 2}
		u.Swap, u.EphemeralStorage = r.Uint64N(1<<uint(r.IntN(62)+1)), r.Uint64N(1<<uint(r.IntN(62)+1))
		l.usage[3].Containers = append(l.usage[3].Containers, points.ContainerUsage{Name: "r", Usage: u})
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

// TestWireUnchangedForCPUAndMemory: what a consumer reading only cpu and
// memory gets is what it got before swap and ephemeral storage were
// served. A list none of whose containers reports them is written byte
// for byte as before (testdata/podlist-*, written by the encoders of
// commit 29f205d, which served cpu and memory only), by our encoders and
// by the codecs; one with them decodes to the same cpu and memory
// quantities, the extra keys beside them.
func TestWireUnchangedForCPUAndMemory(t *testing.T) {
	_, codecs := NewScheme()
	enc := newWireEncodings(codecs)
	plain := wireTestList(enc)
	for i := range plain.usage {
		for j := range plain.usage[i].Containers {
			plain.usage[i].Containers[j].Has = 0
		}
	}
	extras := wireTestList(enc)
	for _, gv := range []schema.GroupVersion{metricsv1.SchemeGroupVersion, v1beta1.SchemeGroupVersion} {
		for ext, mediaType := range map[string]string{"pb": runtime.ContentTypeProtobuf, "json": runtime.ContentTypeJSON} {
			t.Run(gv.Version+"/"+mediaType, func(t *testing.T) {
				info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
				codec := codecs.EncoderForVersion(info.Serializer, gv)
				want, err := os.ReadFile(filepath.Join("testdata", "podlist-"+gv.Version+"."+ext))
				if err != nil {
					t.Fatal(err)
				}
				for name, obj := range map[string]runtime.Object{"ours": plain, "codec": plain.GetObject()} {
					var got bytes.Buffer
					if err := codec.Encode(obj, &got); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), want) {
						t.Errorf("%s: without swap or ephemeral storage the bytes differ from before\n got: %q\nwant: %q", name, clip(got.Bytes()), clip(want))
					}
				}
				// With the extras: same cpu and memory, extra keys only
				// where reported.
				var b bytes.Buffer
				if err := codec.Encode(extras, &b); err != nil {
					t.Fatal(err)
				}
				decoder := codecs.UniversalDecoder() // to the internal version
				gotObj, err := runtime.Decode(decoder, b.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				wantObj, err := runtime.Decode(decoder, want)
				if err != nil {
					t.Fatal(err)
				}
				g, w := gotObj.(*metrics.PodMetricsList), wantObj.(*metrics.PodMetricsList)
				if len(g.Items) != len(w.Items) {
					t.Fatalf("%d items, want %d", len(g.Items), len(w.Items))
				}
				keys := 0
				for i := range g.Items {
					for j, c := range g.Items[i].Containers {
						wc := w.Items[i].Containers[j]
						for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
							if gq, wq := c.Usage[r], wc.Usage[r]; gq.String() != wq.String() {
								t.Errorf("%s/%s %s = %s, want %s", g.Items[i].Name, c.Name, r, gq.String(), wq.String())
							}
						}
						keys += len(c.Usage) - 2
						u := extras.usage[i].Containers[j]
						for _, x := range []struct {
							name corev1.ResourceName
							has  points.Has
							v    uint64
						}{{"swap", points.HasSwap, u.Swap}, {corev1.ResourceEphemeralStorage, points.HasEphemeralStorage, u.EphemeralStorage}} {
							q, ok := c.Usage[x.name]
							if ok != (u.Has&x.has != 0) || ok && q.Value() != int64(x.v) {
								t.Errorf("%s/%s %s = %v (present %v), want %d (present %v)", g.Items[i].Name, c.Name, x.name, q.Value(), ok, x.v, u.Has&x.has != 0)
							}
						}
					}
				}
				if keys != 5 {
					t.Errorf("%d swap and ephemeral-storage keys served, want 5", keys)
				}
			})
		}
	}
}
