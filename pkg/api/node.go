package api

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/metrics/pkg/apis/metrics"
)

// nodeStorage serves nodes.metrics.k8s.io.
type nodeStorage struct {
	metrics   NodeMetricsGetter
	lister    corev1listers.NodeLister
	selector  labels.Selector
	freshness *freshness
}

var (
	_ rest.Storage              = (*nodeStorage)(nil)
	_ rest.KindProvider         = (*nodeStorage)(nil)
	_ rest.Scoper               = (*nodeStorage)(nil)
	_ rest.Getter               = (*nodeStorage)(nil)
	_ rest.Lister               = (*nodeStorage)(nil)
	_ rest.TableConvertor       = (*nodeStorage)(nil)
	_ rest.SingularNameProvider = (*nodeStorage)(nil)
)

func (s *nodeStorage) New() runtime.Object     { return &metrics.NodeMetrics{} }
func (s *nodeStorage) NewList() runtime.Object { return &metrics.NodeMetricsList{} }
func (s *nodeStorage) Destroy()                {}
func (s *nodeStorage) Kind() string            { return "NodeMetrics" }
func (s *nodeStorage) NamespaceScoped() bool   { return false }
func (s *nodeStorage) GetSingularName() string { return "nodemetrics" }

// Get returns one node's metrics, NotFound when the node is unknown,
// outside --node-selector or without metrics.
func (s *nodeStorage) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	notFound := apierrors.NewNotFound(metrics.Resource("nodemetrics"), name)
	node, err := s.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, notFound
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading node %s from the cache: %w", name, err))
	}
	if !s.selector.Matches(labels.Set(node.Labels)) {
		return nil, notFound
	}
	ms, err := s.metrics.GetNodeMetrics(node)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading metrics of node %s: %w", name, err))
	}
	if len(ms) == 0 {
		return nil, notFound
	}
	s.freshness.observe(ms[0].Timestamp.Time)
	return &ms[0], nil
}

// List returns the metrics of the nodes matching the selectors, by name.
func (s *nodeStorage) List(_ context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	ls, fs, err := selectors(opts)
	if err != nil {
		return nil, err
	}
	nodes, err := s.lister.List(ls)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing nodes from the cache: %w", err))
	}
	kept := nodes[:0:0]
	for _, n := range nodes {
		if s.selector.Matches(labels.Set(n.Labels)) && matchFields(fs, "", n.Name) {
			kept = append(kept, n)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Name < kept[j].Name })
	ms, err := s.metrics.GetNodeMetrics(kept...)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading node metrics: %w", err))
	}
	for i := range ms {
		s.freshness.observe(ms[i].Timestamp.Time)
	}
	return &metrics.NodeMetricsList{Items: ms}, nil
}

// ConvertToTable renders node metrics for kubectl get.
func (s *nodeStorage) ConvertToTable(_ context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	var items []metrics.NodeMetrics
	t := &metav1.Table{}
	switch o := obj.(type) {
	case *metrics.NodeMetrics:
		items = []metrics.NodeMetrics{*o}
		t.ResourceVersion = o.ResourceVersion
	case *metrics.NodeMetricsList:
		items = o.Items
		t.ResourceVersion, t.Continue = o.ResourceVersion, o.Continue
	default:
		return nil, fmt.Errorf("cannot render %T as a node metrics table", obj)
	}
	if !noHeaders(opts) {
		t.ColumnDefinitions = usageColumns("node")
	}
	for i := range items {
		m := &items[i]
		t.Rows = append(t.Rows, usageRow(m, m.Name, m.Usage, m.Window.Duration))
	}
	return t, nil
}
