package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/kubemetrics/metrics-server/pkg/podmeta"
)

// podStorage serves pods.metrics.k8s.io.
type podStorage struct {
	metrics   PodMetricsGetter
	lister    cache.GenericLister
	freshness *freshness
	// encodings are the encoders whose output podList writes itself.
	encodings *wireEncodings
}

var (
	_ rest.Storage              = (*podStorage)(nil)
	_ rest.KindProvider         = (*podStorage)(nil)
	_ rest.Scoper               = (*podStorage)(nil)
	_ rest.Getter               = (*podStorage)(nil)
	_ rest.Lister               = (*podStorage)(nil)
	_ rest.TableConvertor       = (*podStorage)(nil)
	_ rest.SingularNameProvider = (*podStorage)(nil)
)

func (s *podStorage) New() runtime.Object     { return &metrics.PodMetrics{} }
func (s *podStorage) NewList() runtime.Object { return &metrics.PodMetricsList{} }
func (s *podStorage) Destroy()                {}
func (s *podStorage) Kind() string            { return "PodMetrics" }
func (s *podStorage) NamespaceScoped() bool   { return true }
func (s *podStorage) GetSingularName() string { return "podmetrics" }

// Get returns one pod's metrics, NotFound when the pod is not running or
// has no metrics (yet).
func (s *podStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	notFound := apierrors.NewNotFound(metrics.Resource("podmetrics"), name)
	obj, err := s.lister.ByNamespace(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, notFound
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading pod %s/%s from the cache: %w", ns, name, err))
	}
	pod, ok := obj.(*podmeta.Pod)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("pod cache holds a %T, want *podmeta.Pod", obj))
	}
	us := s.metrics.GetPodUsage(pod)
	if len(us) == 0 {
		return nil, notFound
	}
	s.freshness.observe(time.Unix(0, us[0].Timestamp))
	m := podMetricsOf(pod, &us[0])
	return &m, nil
}

// List returns the metrics of the pods matching the selectors in the
// request's namespace, or in all namespaces, by namespace and name.
func (s *podStorage) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	ls, fs, err := selectors(opts)
	if err != nil {
		return nil, err
	}
	ns := genericapirequest.NamespaceValue(ctx)
	var objs []runtime.Object
	if ns == metav1.NamespaceAll {
		objs, err = s.lister.List(ls)
	} else {
		objs, err = s.lister.ByNamespace(ns).List(ls)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pods from the cache: %w", err))
	}
	pods := sortedPods(objs, fs)
	list := &podList{pods: pods, usage: s.metrics.GetPodUsage(pods...), encodings: s.encodings}
	s.freshness.observePods(list.usage)
	if !wireEncodingAllowed(ctx) || len(list.usage) == 0 {
		return list.GetObject(), nil
	}
	return list, nil
}

// sortedPods keeps the pods matching fs, sorted by namespace and name as
// the apiserver lists. The sort runs over a slice of the names themselves
// rather than over pointers to the objects: at 150,000 pods, following the
// pointers on every comparison was most of the sort's time.
func sortedPods(objs []runtime.Object, fs fields.Selector) []*podmeta.Pod {
	type entry struct {
		namespace, name string
		pod             *podmeta.Pod
	}
	entries := make([]entry, 0, len(objs))
	for _, o := range objs {
		p, ok := o.(*podmeta.Pod)
		if !ok || !matchFields(fs, p.Namespace, p.Name) {
			continue
		}
		entries = append(entries, entry{p.Namespace, p.Name, p})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := strings.Compare(a.namespace, b.namespace); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	pods := make([]*podmeta.Pod, len(entries))
	for i := range entries {
		pods[i] = entries[i].pod
	}
	return pods
}

// ConvertToTable renders pod metrics for kubectl get, containers summed.
func (s *podStorage) ConvertToTable(_ context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	var items []metrics.PodMetrics
	t := &metav1.Table{}
	switch o := obj.(type) {
	case *metrics.PodMetrics:
		items = []metrics.PodMetrics{*o}
		t.ResourceVersion = o.ResourceVersion
	case *metrics.PodMetricsList:
		items = o.Items
		t.ResourceVersion, t.Continue = o.ResourceVersion, o.Continue
	case *podList:
		items = o.GetObject().(*metrics.PodMetricsList).Items
	default:
		return nil, fmt.Errorf("cannot render %T as a pod metrics table", obj)
	}
	if !noHeaders(opts) {
		t.ColumnDefinitions = usageColumns("pod")
	}
	for i := range items {
		m := &items[i]
		lists := make([]corev1.ResourceList, len(m.Containers))
		for j := range m.Containers {
			lists[j] = m.Containers[j].Usage
		}
		t.Rows = append(t.Rows, usageRow(m, m.Name, sumUsage(lists...), m.Window.Duration))
	}
	return t, nil
}
