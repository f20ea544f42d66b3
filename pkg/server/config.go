package server

import (
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/scraper"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// Config is everything a Server is built from. Options fill it from flags;
// tests fill it directly.
type Config struct {
	// Apiserver is the generic API server config, with secure serving,
	// authentication and authorization already applied.
	Apiserver *genericapiserver.Config
	// Scheme and Codecs are those of the metrics API (api.NewScheme); the
	// Apiserver config must have been built from the same Codecs.
	Scheme *runtime.Scheme
	Codecs serializer.CodecFactory

	// Kube and Metadata read nodes and pod metadata from the kube-apiserver.
	Kube     kubernetes.Interface
	Metadata metadata.Interface

	// Kubelet configures the kubelet client.
	Kubelet kubelet.Config

	// Resolution is the time between scrape cycles.
	Resolution time.Duration
	// ScrapeTimeout bounds one node's scrape.
	ScrapeTimeout time.Duration
	// ScrapeParallelism bounds the kubelet answers read and decoded at
	// once (not the requests waiting for one); 0 means the scraper's
	// default.
	ScrapeParallelism int
	// NodeSelector limits the nodes scraped and served; nil means all.
	NodeSelector labels.Selector
	// StaleAfter is about how long the last good points of a node that
	// fails to be scraped are still served: the node is dropped after
	// StaleAfter/Resolution failed requests in a row (see
	// scraper.Config.StaleAfter); 0 means two resolutions plus the
	// timeout, two failed requests.
	StaleAfter time.Duration
	// DropZeroUsagePods restores upstream's behaviour of hiding a pod any of
	// whose containers reports zero CPU or memory.
	DropZeroUsagePods bool

	// Clock is the time source; nil means the real clock.
	Clock scraper.Clock
}

type completedConfig struct {
	*Config
}

// CompletedConfig is a Config with every default filled in; only it can
// build a Server.
type CompletedConfig struct {
	*completedConfig
}

// Complete fills in defaults. It changes c.
func (c *Config) Complete() CompletedConfig {
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.NodeSelector == nil {
		c.NodeSelector = labels.Everything()
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = 2*c.Resolution + c.ScrapeTimeout
	}
	if c.Kubelet.Clock == nil {
		c.Kubelet.Clock = c.Clock
	}
	return CompletedConfig{&completedConfig{c}}
}
