package main

import (
	"bytes"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

func TestCountListItems(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := metricsv1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ser := protobuf.NewSerializer(scheme, scheme)
	for _, n := range []int{0, 1, 7, 300} {
		list := &metricsv1beta1.PodMetricsList{ListMeta: metav1.ListMeta{ResourceVersion: "5"}}
		list.SetGroupVersionKind(metricsv1beta1.SchemeGroupVersion.WithKind("PodMetricsList"))
		for i := range n {
			list.Items = append(list.Items, metricsv1beta1.PodMetrics{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Namespace: "default"},
				Containers: []metricsv1beta1.ContainerMetrics{{Name: "c"}, {Name: "d"}},
			})
		}
		var b bytes.Buffer
		if err := ser.Encode(list, &b); err != nil {
			t.Fatal(err)
		}
		got, err := countListItems(b.Bytes())
		if err != nil || got != n {
			t.Errorf("%d items: counted %d (%v)", n, got, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("{\"items\":[]}"), []byte("k8s\x00\x12\xff")} {
		if n, err := countListItems(bad); err == nil {
			t.Errorf("%q: counted %d, want an error", bad, n)
		}
	}
}
