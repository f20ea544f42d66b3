package server

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	apimetrics "k8s.io/apiserver/pkg/endpoints/metrics"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/api"
	"github.com/kubemetrics/metrics-server/pkg/nodeevents"
	"github.com/kubemetrics/metrics-server/pkg/scraper"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
	"github.com/kubemetrics/metrics-server/pkg/status"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// Server is a running metrics server: build it with CompletedConfig.New,
// start it with Run.
type Server struct {
	generic      *genericapiserver.GenericAPIServer
	nodeFactory  informers.SharedInformerFactory
	nodeInformer cache.SharedIndexInformer
	podInformer  cache.SharedIndexInformer
	scraper      *scraper.Scraper
	store        *storage.Store
	nodeEvents   *nodeevents.Recorder
}

// New builds a Server. Nothing runs until Run.
func (c CompletedConfig) New() (*Server, error) {
	registry := metrics.NewKubeRegistry()

	nodeFactory := newNodeInformers(c.Kube)
	nodes := nodeFactory.Core().V1().Nodes()
	podInformer, err := newPodInformer(c.Metadata)
	if err != nil {
		return nil, err
	}

	client, err := kubelet.NewClient(c.Kubelet)
	if err != nil {
		return nil, fmt.Errorf("building the kubelet client: %w", err)
	}
	// Staleness is the scraper's: it counts failed requests, not time.
	store := storage.NewStore(storage.Options{
		DropZeroUsagePods: c.DropZeroUsagePods,
		ClockTolerance:    clockToleranceFor(c.ScrapeTimeout),
		Clock:             c.Clock,
	})
	sink := newCountingSink(store, registry)
	nodeEvents := nodeevents.New(nodeevents.Config{Client: c.Kube, Clock: c.Clock})
	scr := scraper.New(scraper.Config{
		Resolution:  c.Resolution,
		Timeout:     c.ScrapeTimeout,
		Parallelism: c.ScrapeParallelism,
		StaleAfter:  c.StaleAfter,
		Spread:      spreadFor(c.Resolution, c.ScrapeTimeout),
		FollowUp:    followUpFor(c.Resolution),
		Selector:    c.NodeSelector,
		Classify:    func(err error) string { return string(kubelet.ReasonOf(err)) },
		Observer:    nodeEvents,
	}, nodes.Lister(), client, sink, scraper.NewMetrics(registry, c.Resolution.Seconds()), c.Clock)

	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			name := nodeName(obj)
			if name == "" {
				return
			}
			// The scraper forgets the node in the store too, so that a
			// scrape in flight cannot store it again.
			scr.ForgetNode(name)
			client.Forget(name)
			nodeEvents.Forget(name)
			klog.V(2).InfoS("Forgot deleted node", "node", klog.KRef("", name))
		},
	}); err != nil {
		return nil, fmt.Errorf("watching node deletions: %w", err)
	}

	// The generic server's own /metrics would serve only the legacy
	// registry; ours serves both.
	c.Apiserver.EnableMetrics = false
	// Pod lists may be written by the API package's own encoders; the
	// filter sits innermost, next to the API handlers, and lets through
	// only requests that ask for no server-side transformation. HEAD on
	// the discovery documents is answered as their GET, after authorization.
	chain := c.Apiserver.BuildHandlerChainFunc
	if chain == nil {
		chain = genericapiserver.DefaultBuildHandlerChain
	}
	c.Apiserver.BuildHandlerChainFunc = func(h http.Handler, cfg *genericapiserver.Config) http.Handler {
		return chain(withHeadDiscovery(api.WithWireEncoding(h)), cfg)
	}
	generic, err := c.Apiserver.Complete(nil).New("metrics-server", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("building the API server: %w", err)
	}
	apimetrics.Register()
	generic.Handler.NonGoRestfulMux.Handle("/metrics", metricsHandler(registry))
	generic.Handler.NonGoRestfulMux.HandlePrefix(status.Prefix, status.NewHandler(status.Config{
		Nodes:   scr,
		Pods:    store,
		Running: runningIn(podInformer.Lister()),
	}))

	if err := api.Install(generic, c.Scheme, c.Codecs, api.Config{
		Metrics:      store,
		NodeLister:   nodes.Lister(),
		PodLister:    podInformer.Lister(),
		NodeSelector: c.NodeSelector,
		Registry:     registry,
		Clock:        c.Clock,
	}); err != nil {
		return nil, fmt.Errorf("installing the metrics API: %w", err)
	}

	synced := map[string]func() bool{
		"node": nodes.Informer().HasSynced,
		"pod":  podInformer.Informer().HasSynced,
	}
	if err := generic.AddReadyzChecks(storageReady(scr, store, podsRunning(podInformer.Informer(), c.NodeSelector)),
		informersSynced(checkInformerSync, synced)); err != nil {
		return nil, err
	}
	if err := generic.AddLivezChecks(0, collectionTimely(scr, c.Resolution, c.Clock)); err != nil {
		return nil, err
	}
	if err := generic.AddHealthChecks(informersSynced(checkMetadataSync, map[string]func() bool{"pod metadata": podInformer.Informer().HasSynced})); err != nil {
		return nil, err
	}

	return &Server{
		generic:      generic,
		nodeFactory:  nodeFactory,
		nodeInformer: nodes.Informer(),
		podInformer:  podInformer.Informer(),
		scraper:      scr,
		store:        store,
		nodeEvents:   nodeEvents,
	}, nil
}

// Run starts the informers and scrapes as soon as the nodes are known;
// it serves once the pods are known too (a large cluster's pod list takes
// seconds, which the start-up scrapes overlap), until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	s.nodeFactory.Start(ctx.Done())
	go s.podInformer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), s.nodeInformer.HasSynced) {
		return fmt.Errorf("the node informer did not sync before shutdown: %w", context.Cause(ctx))
	}
	if err := s.nodeEvents.Start(ctx); err != nil {
		return err
	}
	klog.InfoS("Nodes synced; starting to scrape")
	go s.scraper.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), s.podInformer.HasSynced) {
		return fmt.Errorf("the pod informer did not sync before shutdown: %w", context.Cause(ctx))
	}
	klog.InfoS("Pods synced; serving")
	return s.generic.PrepareRun().RunWithContext(ctx)
}

// podsRunning tells readiness whether a running pod exists on the scraped
// nodes, from the pod informer rather than the kubelets. The informer holds
// metadata only, without the pod's node, so with a node selector it cannot
// tell and says no (the kubelets' reports still count). It asks the
// namespace index for its values, a set that holds only namespaces with
// pods in the cache: no list of every pod.
func podsRunning(pods cache.SharedIndexInformer, nodeSelector labels.Selector) func() bool {
	if !nodeSelector.Empty() {
		return nil
	}
	return func() bool {
		return len(pods.GetIndexer().ListIndexFuncValues(cache.NamespaceIndex)) > 0
	}
}

// runningIn reports whether the pod cache (Running pods only) holds a pod.
func runningIn(pods cache.GenericLister) func(namespace, name string) (bool, error) {
	return func(namespace, name string) (bool, error) {
		_, err := pods.ByNamespace(namespace).Get(name)
		switch {
		case apierrors.IsNotFound(err):
			return false, nil
		case err != nil:
			return false, err
		}
		return true, nil
	}
}

func nodeName(obj any) string {
	switch o := obj.(type) {
	case *corev1.Node:
		return o.Name
	case cache.DeletedFinalStateUnknown:
		if n, ok := o.Obj.(*corev1.Node); ok {
			return n.Name
		}
		_, name, err := cache.SplitMetaNamespaceKey(o.Key)
		if err == nil {
			return name
		}
	}
	return ""
}

func metricsHandler(registry metrics.KubeRegistry) http.Handler {
	ours := metrics.HandlerFor(registry, metrics.HandlerOpts{})
	legacy := legacyregistry.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		legacy.ServeHTTP(w, r)
		ours.ServeHTTP(w, r)
	})
}
