package server

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

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
// cache keeps only what the API reads.
func newPodInformer(client metadata.Interface) (informers.GenericInformer, error) {
	inf := metadatainformer.NewFilteredMetadataInformer(client, corev1.SchemeGroupVersion.WithResource("pods"),
		metav1.NamespaceAll, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) { o.FieldSelector = runningPodsSelector })
	if err := inf.Informer().SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("setting the pod informer transform: %w", err)
	}
	return inf, nil
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

// slimPod keeps of a pod's metadata what the API serves and selects on:
// name, namespace, labels and creation time (uid, resource version and
// type are 150,000 strings nobody reads at 5,000 nodes).
func slimPod(obj any) (any, error) {
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		ObjectMeta: metav1.ObjectMeta{
			Name:              p.Name,
			Namespace:         p.Namespace,
			CreationTimestamp: p.CreationTimestamp,
			Labels:            p.Labels,
		},
	}, nil
}
