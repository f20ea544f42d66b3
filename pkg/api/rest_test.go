package api

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/points"
)

var sampleTime = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// fakeMetrics serves fixed usage for the names it knows, honouring the
// getter contract: input order, unknown objects skipped.
type fakeMetrics struct {
	nodes map[string]int64 // milli-CPU
	pods  map[string]int64 // namespace/name -> milli-CPU of its one container
}

func (f *fakeMetrics) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	var out []metrics.NodeMetrics
	for _, n := range nodes {
		if m, ok := f.nodes[n.Name]; ok {
			out = append(out, metrics.NodeMetrics{
				ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels},
				Timestamp:  metav1.NewTime(sampleTime),
				Window:     metav1.Duration{Duration: 15 * time.Second},
				Usage:      usageOf(m),
			})
		}
	}
	return out, nil
}

func (f *fakeMetrics) GetPodUsage(pods ...*podmeta.Pod) []points.PodUsage {
	var out []points.PodUsage
	for i, p := range pods {
		if m, ok := f.pods[p.Namespace+"/"+p.Name]; ok {
			usage := func(milliCPU int64) points.Usage {
				return points.Usage{NanoCores: uint64(milliCPU) * 1e6, Memory: uint64(milliCPU) << 20}
			}
			out = append(out, points.PodUsage{
				Index: i, Timestamp: sampleTime.UnixNano(), Window: int64(15 * time.Second),
				Containers: []points.ContainerUsage{{Name: "app", Usage: usage(m)}, {Name: "sidecar", Usage: usage(1)}},
			})
		}
	}
	return out
}

func usageOf(milliCPU int64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(milliCPU, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(milliCPU<<20, resource.BinarySI),
	}
}

func testStorage(t *testing.T) (*nodeStorage, *podStorage) {
	t.Helper()
	nodeIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, n := range []struct {
		name string
		pool string
	}{{"node-b", "blue"}, {"node-a", "blue"}, {"node-c", "green"}, {"node-nometrics", "blue"}} {
		if err := nodeIdx.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"pool": n.pool}}}); err != nil {
			t.Fatal(err)
		}
	}
	podIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range []struct{ ns, name, app string }{
		{"shop", "web-2", "web"}, {"shop", "web-1", "web"}, {"shop", "db-0", "db"}, {"ops", "web-1", "web"}, {"shop", "starting", "web"},
	} {
		if err := podIdx.Add(&podmeta.Pod{Namespace: p.ns, Name: p.name, Labels: map[string]string{"app": p.app}}); err != nil {
			t.Fatal(err)
		}
	}
	fm := &fakeMetrics{
		nodes: map[string]int64{"node-a": 1000, "node-b": 2000, "node-c": 3000},
		pods:  map[string]int64{"shop/web-1": 100, "shop/web-2": 200, "shop/db-0": 300, "ops/web-1": 400},
	}
	fresh := newFreshness(nil, clocktesting.NewFakeClock(sampleTime.Add(20*time.Second)))
	sel, err := labels.Parse("pool=blue")
	if err != nil {
		t.Fatal(err)
	}
	return &nodeStorage{metrics: fm, lister: corev1listers.NewNodeLister(nodeIdx), selector: sel, freshness: fresh},
		&podStorage{metrics: fm, lister: cache.NewGenericLister(podIdx, metrics.Resource("pods")), freshness: fresh}
}

func listOpts(t *testing.T, label, field string) *metainternalversion.ListOptions {
	t.Helper()
	o := &metainternalversion.ListOptions{}
	if label != "" {
		s, err := labels.Parse(label)
		if err != nil {
			t.Fatal(err)
		}
		o.LabelSelector = s
	}
	if field != "" {
		s, err := fields.ParseSelector(field)
		if err != nil {
			t.Fatal(err)
		}
		o.FieldSelector = s
	}
	return o
}

func TestNodeList(t *testing.T) {
	nodes, _ := testStorage(t)
	tests := []struct {
		name, label, field string
		want               []string
		wantBadRequest     bool
	}{
		{name: "node selector hides node-c; no metrics hides one; sorted", want: []string{"node-a", "node-b"}},
		{name: "label selector", label: "pool=green", want: nil},
		{name: "field selector on name", field: "metadata.name=node-b", want: []string{"node-b"}},
		{name: "field selector negated", field: "metadata.name!=node-b", want: []string{"node-a"}},
		{name: "unsupported field", field: "spec.unschedulable=true", wantBadRequest: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := nodes.List(context.Background(), listOpts(t, tt.label, tt.field))
			if tt.wantBadRequest {
				if !apierrors.IsBadRequest(err) {
					t.Fatalf("err = %v, want BadRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range obj.(*metrics.NodeMetricsList).Items {
				got = append(got, m.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeGet(t *testing.T) {
	nodes, _ := testStorage(t)
	for name, wantFound := range map[string]bool{"node-a": true, "node-c": false, "node-nometrics": false, "ghost": false} {
		t.Run(name, func(t *testing.T) {
			obj, err := nodes.Get(context.Background(), name, &metav1.GetOptions{})
			if !wantFound {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("err = %v, want NotFound", err)
				}
				if se, ok := err.(*apierrors.StatusError); !ok || se.ErrStatus.Details.Kind != "nodemetrics" {
					t.Errorf("NotFound for kind %v, want nodemetrics", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := obj.(*metrics.NodeMetrics).Usage.Cpu().MilliValue(); got != 1000 {
				t.Errorf("cpu = %dm, want 1000m", got)
			}
		})
	}
}

func TestPodListAndGet(t *testing.T) {
	_, pods := testStorage(t)
	tests := []struct {
		name, ns, label, field string
		want                   []string
	}{
		{name: "all namespaces, sorted, pods without metrics skipped", want: []string{"ops/web-1", "shop/db-0", "shop/web-1", "shop/web-2"}},
		{name: "one namespace", ns: "shop", want: []string{"shop/db-0", "shop/web-1", "shop/web-2"}},
		{name: "label selector, as the HPA asks", ns: "shop", label: "app=web", want: []string{"shop/web-1", "shop/web-2"}},
		{name: "field selector on namespace", field: "metadata.namespace=ops", want: []string{"ops/web-1"}},
		{name: "field selector on name across namespaces", field: "metadata.name=web-1", want: []string{"ops/web-1", "shop/web-1"}},
		{name: "nothing matches", ns: "nowhere", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := genericapirequest.WithNamespace(context.Background(), tt.ns)
			obj, err := pods.List(ctx, listOpts(t, tt.label, tt.field))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range obj.(*metrics.PodMetricsList).Items {
				got = append(got, m.Namespace+"/"+m.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pods (-want +got):\n%s", diff)
			}
		})
	}
	ctx := genericapirequest.WithNamespace(context.Background(), "shop")
	if _, err := pods.Get(ctx, "starting", &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get pod without metrics: err = %v, want NotFound", err)
	}
	if _, err := pods.Get(ctx, "ghost", &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get unknown pod: err = %v, want NotFound", err)
	}
	obj, err := pods.Get(ctx, "db-0", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.(*metrics.PodMetrics).Containers[0].Usage.Cpu().MilliValue(); got != 300 {
		t.Errorf("db-0 cpu = %dm, want 300m", got)
	}
}

func TestTables(t *testing.T) {
	nodes, pods := testStorage(t)
	nodeList, err := nodes.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	table, err := nodes.ConvertToTable(context.Background(), nodeList, &metav1.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var headers []string
	for _, c := range table.ColumnDefinitions {
		headers = append(headers, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "CPU", "Memory", "Window"}, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"node-a", "1", "1000Mi", "15s"}, table.Rows[0].Cells); diff != "" {
		t.Errorf("first node row (-want +got):\n%s", diff)
	}

	ctx := genericapirequest.WithNamespace(context.Background(), "shop")
	pod, err := pods.Get(ctx, "web-2", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	table, err = pods.ConvertToTable(ctx, pod, &metav1.TableOptions{NoHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(table.ColumnDefinitions) != 0 {
		t.Errorf("NoHeaders still gave %d columns", len(table.ColumnDefinitions))
	}
	// Containers summed: 200m + 1m, 200Mi + 1Mi.
	if diff := cmp.Diff([]any{"web-2", "201m", "201Mi", "15s"}, table.Rows[0].Cells); diff != "" {
		t.Errorf("pod row (-want +got):\n%s", diff)
	}
	if _, err := pods.ConvertToTable(ctx, &metrics.NodeMetrics{}, nil); err == nil {
		t.Errorf("a node object rendered as a pod table without error")
	}
}
