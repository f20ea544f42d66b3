package api

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	compmetrics "k8s.io/component-base/metrics"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"
	"k8s.io/utils/clock"
)

// Config is what the API serves from.
type Config struct {
	Metrics MetricsGetter
	// NodeLister reads nodes from a typed informer.
	NodeLister corev1listers.NodeLister
	// PodLister reads running pods' metadata (*podmeta.Pod) from the
	// pod informer's cache.
	PodLister cache.GenericLister
	// NodeSelector limits the nodes served; nil means all.
	NodeSelector labels.Selector
	// Registry receives metrics_server_api_metric_freshness_seconds; nil
	// leaves it unregistered.
	Registry compmetrics.KubeRegistry
	// Clock is the time source; nil means the real clock.
	Clock clock.PassiveClock
}

// Install adds metrics.k8s.io, versions v1 and v1beta1, to server.
func Install(server *genericapiserver.GenericAPIServer, scheme *runtime.Scheme, codecs serializer.CodecFactory, cfg Config) error {
	if cfg.Metrics == nil || cfg.NodeLister == nil || cfg.PodLister == nil {
		return fmt.Errorf("api.Install needs Metrics, NodeLister and PodLister")
	}
	info := genericapiserver.NewDefaultAPIGroupInfo(metrics.GroupName, scheme, metav1.ParameterCodec, codecs)
	info.VersionedResourcesStorageMap = Storage(cfg, codecs)
	return server.InstallAPIGroup(&info)
}

// Storage returns the REST storage of both versions, keyed by version and
// resource, for callers that assemble their own API group. Pod lists are
// written straight to the wire for the plain protobuf and JSON encoders of
// codecs (see WithWireEncoding).
func Storage(cfg Config, codecs serializer.CodecFactory) map[string]map[string]rest.Storage {
	if cfg.NodeSelector == nil {
		cfg.NodeSelector = labels.Everything()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	fresh := newFreshness(cfg.Registry, cfg.Clock)
	resources := map[string]rest.Storage{
		"nodes": &nodeStorage{metrics: cfg.Metrics, lister: cfg.NodeLister, selector: cfg.NodeSelector, freshness: fresh},
		"pods":  &podStorage{metrics: cfg.Metrics, lister: cfg.PodLister, freshness: fresh, encodings: newWireEncodings(codecs)},
	}
	return map[string]map[string]rest.Storage{
		metricsv1.SchemeGroupVersion.Version: resources,
		v1beta1.SchemeGroupVersion.Version:   resources,
	}
}
