package server

import (
	"reflect"
	"testing"
	"time"

	"context"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
)

func TestSlimNodeKeepsWhatIsRead(t *testing.T) {
	full := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "n1", UID: "u1", ResourceVersion: "7", Labels: map[string]string{"a": "b"},
			Annotations:   map[string]string{"metrics.k8s.io/resource-metrics-path": "/x", "flannel.alpha.coreos.com/backend-data": "big"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.0.0.0/24"},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.1.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			Images:          []corev1.ContainerImage{{Names: []string{"big"}, SizeBytes: 1}},
			Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady}},
		},
	}
	got, err := slimNode(full)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u1", ResourceVersion: "7", Labels: full.Labels, Annotations: map[string]string{"metrics.k8s.io/resource-metrics-path": "/x"}},
		Status:     corev1.NodeStatus{Addresses: full.Status.Addresses, DaemonEndpoints: full.Status.DaemonEndpoints},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slim node (-want +got):\n%s", diff)
	}
	if other, _ := slimNode("tombstone"); other != "tombstone" {
		t.Errorf("a non-node was changed")
	}
}

func TestSlimPodKeepsWhatIsRead(t *testing.T) {
	full := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Namespace: "ns", Labels: map[string]string{"app": "x"}, UID: "u1", ResourceVersion: "9",
		CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)),
		Annotations:       map[string]string{"big": "annotation"},
		OwnerReferences:   []metav1.OwnerReference{{Name: "rs"}},
		ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
	}}
	got, err := slimPod(full, newLabelInterner(10))
	if err != nil {
		t.Fatal(err)
	}
	want := &podmeta.Pod{Name: "p", Namespace: "ns", Labels: full.Labels, CreationTimestamp: full.CreationTimestamp}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slim pod (-want +got):\n%s", diff)
	}
}

func TestLabelInternerShares(t *testing.T) {
	li := newLabelInterner(2)
	same := func(a, b map[string]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	a := li.intern(map[string]string{"app": "web", "pod-template-hash": "5d8f"})
	b := li.intern(map[string]string{"pod-template-hash": "5d8f", "app": "web"})
	if !same(a, b) {
		t.Error("equal label sets got two maps")
	}
	// A key/value boundary moved must not match.
	c := li.intern(map[string]string{"app": "webpod-template-hash", "": "5d8f"})
	if same(a, c) {
		t.Error("different label sets share a map")
	}
	if li.intern(nil) != nil || li.intern(map[string]string{}) != nil {
		t.Error("no labels should stay nil")
	}
	// The table holds 2 sets; a third starts it over, and a set interned
	// before is then stored anew.
	li.intern(map[string]string{"x": "1"})
	d := li.intern(map[string]string{"app": "web", "pod-template-hash": "5d8f"})
	if same(a, d) || len(li.table) != 2 {
		t.Errorf("table of %d sets after passing its bound, want it started over", len(li.table))
	}
	if d["app"] != "web" || d["pod-template-hash"] != "5d8f" || len(d) != 2 {
		t.Errorf("interned labels changed: %v", d)
	}
}

func TestSpreadFor(t *testing.T) {
	tests := []struct {
		resolution, timeout, want time.Duration
	}{
		{15 * time.Second, 10 * time.Second, 3750 * time.Millisecond},
		{time.Minute, 10 * time.Second, 5 * time.Second},
		{12 * time.Second, 10 * time.Second, 2 * time.Second},
		{10 * time.Second, 10 * time.Second, 0},
	}
	for _, tt := range tests {
		if got := spreadFor(tt.resolution, tt.timeout); got != tt.want {
			t.Errorf("spreadFor(%v, %v) = %v, want %v", tt.resolution, tt.timeout, got, tt.want)
		}
	}
}

func TestFollowUpFor(t *testing.T) {
	for res, want := range map[time.Duration]time.Duration{time.Minute: 2 * time.Second, 15 * time.Second: 2 * time.Second, 6 * time.Second: time.Second} {
		if got := followUpFor(res); got != want {
			t.Errorf("followUpFor(%v) = %v, want %v", res, got, want)
		}
	}
}

type lastCycle time.Time

func (l lastCycle) LastCycle() time.Time { return time.Time(l) }

func TestHealthChecks(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(10000, 0))
	tests := []struct {
		name    string
		check   func() error
		wantErr bool
	}{
		{"timely before the first cycle", func() error { return collectionTimely(lastCycle{}, 15*time.Second, clk).Check(nil) }, false},
		{"timely within 1.5 resolutions", func() error {
			return collectionTimely(lastCycle(clk.Now().Add(-22*time.Second)), 15*time.Second, clk).Check(nil)
		}, false},
		{"late past 1.5 resolutions", func() error {
			return collectionTimely(lastCycle(clk.Now().Add(-23*time.Second)), 15*time.Second, clk).Check(nil)
		}, true},
		{"informer not synced", func() error {
			return informersSynced("x", map[string]func() bool{"node": func() bool { return true }, "pod": func() bool { return false }}).Check(nil)
		}, true},
		{"informers synced", func() error {
			return informersSynced("x", map[string]func() bool{"node": func() bool { return true }}).Check(nil)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(); (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
	if got := collectionTimely(lastCycle{}, time.Second, clk).Name(); got != "metric-collection-timely" {
		t.Errorf("check name %q, want upstream's metric-collection-timely", got)
	}
}

func TestPodInformerListsPagedAndSlim(t *testing.T) {
	if !watchlist.DoesClientNotSupportWatchListSemantics(pagedListWatch{&cache.ListWatch{}}) {
		t.Error("the pod ListerWatcher does not opt out of watch-list")
	}
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": "web"}, UID: types.UID(name + "-uid")},
		}
	}
	client := metadatafake.NewSimpleMetadataClient(scheme, pod("web-1"), pod("web-2"))
	var selectors []string
	client.PrependReactor("list", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		selectors = append(selectors, a.(clienttesting.ListAction).GetListRestrictions().Fields.String())
		return false, nil, nil
	})
	inf, err := newPodInformer(client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Informer().RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		t.Fatal("pod informer did not sync")
	}
	objs, err := inf.Lister().ByNamespace("shop").List(labels.SelectorFromSet(labels.Set{"app": "web"}))
	if err != nil || len(objs) != 2 {
		t.Fatalf("listed %d pods (%v), want 2", len(objs), err)
	}
	a, aok := objs[0].(*podmeta.Pod)
	b, bok := objs[1].(*podmeta.Pod)
	if !aok || !bok {
		t.Fatalf("cached pods are %T and %T, want *podmeta.Pod: the transform did not run", objs[0], objs[1])
	}
	if one, err := inf.Lister().ByNamespace("shop").Get("web-2"); err != nil || one.(*podmeta.Pod).Name != "web-2" {
		t.Errorf("get shop/web-2 = %v, %v", one, err)
	}
	if _, err := inf.Lister().ByNamespace("shop").Get("gone"); !apierrors.IsNotFound(err) {
		t.Errorf("get of a missing pod: %v, want NotFound", err)
	}
	if reflect.ValueOf(a.Labels).Pointer() != reflect.ValueOf(b.Labels).Pointer() {
		t.Error("pods with equal labels do not share one map")
	}
	if len(selectors) == 0 || selectors[0] != runningPodsSelector {
		t.Errorf("pods listed with field selectors %q, want %q", selectors, runningPodsSelector)
	}
}

func TestClockToleranceFor(t *testing.T) {
	for timeout, want := range map[time.Duration]time.Duration{
		5 * time.Second:  30 * time.Second, // the store's default covers short timeouts
		10 * time.Second: 30 * time.Second,
		30 * time.Second: 50 * time.Second, // a long request may land that much later
	} {
		if got := clockToleranceFor(timeout); got != want {
			t.Errorf("clockToleranceFor(%v) = %v, want %v", timeout, got, want)
		}
	}
}
