package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// runningPodsSelector keeps the pod informer to pods that can have metrics;
// upstream metrics-server filters the same way, on the apiserver side.
const runningPodsSelector = "status.phase=Running"

// newNodeInformers returns a typed informer factory whose node cache keeps
// only what the scraper and the API read.
func newNodeInformers(client kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTransform(slimNode))
}

// newPodInformer returns a metadata-only informer over running pods whose
// cache keeps only what the API reads, as *podmeta.Pod. Its first list is a paged LIST,
// not client-go's default streaming watch-list: at 150,000 pods the
// streamed list took this apiserver 17 to 23 s against 11 to 13 s paged,
// while the start-up scrapes need the same cores (cd test && go run
// ./cmd/benchfleet -nodes 5000 -compare ../_output/metrics-server
// -compare-env KUBE_FEATURE_WatchListClient=false, before this change).
func newPodInformer(client metadata.Interface) (informers.GenericInformer, error) {
	gvr := corev1.SchemeGroupVersion.WithResource("pods")
	tweak := func(o *metav1.ListOptions) { o.FieldSelector = runningPodsSelector }
	lw := pagedListWatch{&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return client.Resource(gvr).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return client.Resource(gvr).Watch(ctx, o)
		},
	}}
	inf := cache.NewSharedIndexInformer(lw, &metav1.PartialObjectMetadata{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	labels := newLabelInterner(maxInternedLabelSets)
	if err := inf.SetTransform(func(obj any) (any, error) { return slimPod(obj, labels) }); err != nil {
		return nil, fmt.Errorf("setting the pod informer transform: %w", err)
	}
	return podInformer{inf, gvr}, nil
}

// pagedListWatch tells the reflector to list rather than stream the
// initial pods (client-go asks a ListerWatcher whether it supports
// watch-list semantics).
type pagedListWatch struct{ *cache.ListWatch }

func (pagedListWatch) IsWatchListSemanticsUnSupported() bool { return true }

// podInformer is the pod informer with a lister of its *podmeta.Pod.
type podInformer struct {
	informer cache.SharedIndexInformer
	gvr      schema.GroupVersionResource
}

func (p podInformer) Informer() cache.SharedIndexInformer { return p.informer }

func (p podInformer) Lister() cache.GenericLister {
	return cache.NewGenericLister(p.informer.GetIndexer(), p.gvr.GroupResource())
}

// slimNode keeps of a Node its identity, labels, the annotations the kubelet
// client reads, its addresses and kubelet port. Managed fields, images,
// conditions and the rest of the status are dropped: at 10,000 nodes they
// would be most of the cache.
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	var annotations map[string]string
	if p, ok := n.Annotations[kubelet.ResourcePathAnnotation]; ok {
		annotations = map[string]string{kubelet.ResourcePathAnnotation: p}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:              n.Name,
			UID:               n.UID,
			ResourceVersion:   n.ResourceVersion,
			CreationTimestamp: n.CreationTimestamp,
			Labels:            n.Labels,
			Annotations:       annotations,
		},
		Status: corev1.NodeStatus{
			Addresses:       n.Status.Addresses,
			DaemonEndpoints: n.Status.DaemonEndpoints,
		},
	}, nil
}

// slimPod keeps of a pod's metadata what the API serves and selects on, as
// a podmeta.Pod (64 bytes instead of 288: uid, resource version, owners and
// the rest are 150,000 sets of fields nobody reads at 5,000 nodes). Pods
// with the same labels (the replicas of one ReplicaSet or DaemonSet) share
// one label map and pods of a namespace one namespace string.
func slimPod(obj any, labels *labelInterner) (any, error) {
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &podmeta.Pod{
		Namespace:         unique.Make(p.Namespace).Value(),
		Name:              p.Name,
		Labels:            labels.intern(p.Labels),
		CreationTimestamp: p.CreationTimestamp,
	}, nil
}

// maxInternedLabelSets bounds the interner's table; past it the table starts
// over (pods already cached keep their maps).
const maxInternedLabelSets = 20000

// labelInterner hands out one shared map per distinct label set. Cached
// objects are read-only, so sharing is safe. Informer transforms run on one
// goroutine per informer, but the lock keeps it safe for any caller.
type labelInterner struct {
	mu    sync.Mutex
	max   int
	table map[string]map[string]string
	key   []byte
}

func newLabelInterner(max int) *labelInterner {
	return &labelInterner{max: max, table: map[string]map[string]string{}}
}

func (li *labelInterner) intern(l map[string]string) map[string]string {
	if len(l) == 0 {
		return nil
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	li.mu.Lock()
	defer li.mu.Unlock()
	// Label keys and values cannot hold a NUL, so it separates them.
	li.key = li.key[:0]
	for _, k := range keys {
		li.key = append(append(append(append(li.key, k...), 0), l[k]...), 0)
	}
	if shared, ok := li.table[string(li.key)]; ok {
		return shared
	}
	if len(li.table) >= li.max {
		li.table = map[string]map[string]string{}
	}
	li.table[string(li.key)] = l
	return l
}
