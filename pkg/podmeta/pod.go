// Package podmeta holds a running pod's metadata as the pod cache keeps it:
// only what the metrics API serves and selects on (namespace, name, labels,
// creation time). It knows nothing about informers, the store or the wire.
//
// A Pod is 64 bytes where the PartialObjectMetadata the apiserver sends is
// 288, which at 150,000 pods is 33 MB of the server's heap. It implements
// runtime.Object and metav1.Object so client-go's informer, indexer and
// generic lister hold and select it like any object; setters of fields it
// does not keep drop the value.
package podmeta

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Pod is one running pod's metadata. Cached pods are shared and read-only:
// pods with equal labels may share one Labels map.
type Pod struct {
	Namespace, Name   string
	Labels            map[string]string
	CreationTimestamp metav1.Time
}

var (
	_ runtime.Object = (*Pod)(nil)
	_ metav1.Object  = (*Pod)(nil)
)

// GetObjectKind reports no kind: a Pod is never encoded.
func (p *Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject returns a copy with its own labels map.
func (p *Pod) DeepCopyObject() runtime.Object {
	c := *p
	c.Labels = maps.Clone(p.Labels)
	return &c
}

func (p *Pod) GetNamespace() string                  { return p.Namespace }
func (p *Pod) SetNamespace(ns string)                { p.Namespace = ns }
func (p *Pod) GetName() string                       { return p.Name }
func (p *Pod) SetName(name string)                   { p.Name = name }
func (p *Pod) GetLabels() map[string]string          { return p.Labels }
func (p *Pod) SetLabels(l map[string]string)         { p.Labels = l }
func (p *Pod) GetCreationTimestamp() metav1.Time     { return p.CreationTimestamp }
func (p *Pod) SetCreationTimestamp(t metav1.Time)    { p.CreationTimestamp = t }
func (p *Pod) GetGenerateName() string               { return "" }
func (p *Pod) SetGenerateName(string)                {}
func (p *Pod) GetUID() types.UID                     { return "" }
func (p *Pod) SetUID(types.UID)                      {}
func (p *Pod) GetResourceVersion() string            { return "" }
func (p *Pod) SetResourceVersion(string)             {}
func (p *Pod) GetGeneration() int64                  { return 0 }
func (p *Pod) SetGeneration(int64)                   {}
func (p *Pod) GetSelfLink() string                   { return "" }
func (p *Pod) SetSelfLink(string)                    {}
func (p *Pod) GetDeletionTimestamp() *metav1.Time    { return nil }
func (p *Pod) SetDeletionTimestamp(*metav1.Time)     {}
func (p *Pod) GetDeletionGracePeriodSeconds() *int64 { return nil }
func (p *Pod) SetDeletionGracePeriodSeconds(*int64)  {}
func (p *Pod) GetAnnotations() map[string]string     { return nil }
func (p *Pod) SetAnnotations(map[string]string)      {}
func (p *Pod) GetFinalizers() []string               { return nil }
func (p *Pod) SetFinalizers([]string)                {}
func (p *Pod) GetOwnerReferences() []metav1.OwnerReference {
	return nil
}
func (p *Pod) SetOwnerReferences([]metav1.OwnerReference) {}
func (p *Pod) GetManagedFields() []metav1.ManagedFieldsEntry {
	return nil
}
func (p *Pod) SetManagedFields([]metav1.ManagedFieldsEntry) {}
