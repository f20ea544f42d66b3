package fleet

import (
	"net/http"

	restful "github.com/emicklei/go-restful/v3"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/kubernetes/pkg/kubelet/metrics/collectors"
	"k8s.io/kubernetes/pkg/kubelet/server/stats"
)

// Both endpoints are rendered by the kubelet's own code from
// k8s.io/kubernetes, over the fleet's summaryProvider, so the simulator
// cannot drift from the kubelet's wire format:
//   - /stats/summary by the kubelet's stats handler (pkg/kubelet/server/stats,
//     go-restful, indented JSON, 500 "Internal Error: ..." on a provider
//     error);
//   - /metrics/resource by the kubelet's resource collector
//     (pkg/kubelet/metrics/collectors) in a component-base KubeRegistry
//     served by its promhttp handler (text 0.0.4, gzip when asked,
//     millisecond sample timestamps, start times as float64(UnixNano)/1e9).

// kubeletVersion is the kubelet the registries behave as: metrics
// deprecated before it (scrape_error, deprecated in 1.29) are hidden as a
// real kubelet of that version hides them, whatever version this binary
// was built with.
const kubeletVersion = "1.37.2"

// newStatsHandler returns the kubelet's /stats/ web service for every node
// of the fleet: the request's context carries its node (nodeKey).
func newStatsHandler() http.Handler {
	c := restful.NewContainer()
	// The kubelet's stats handler reads nothing but the summary provider
	// on /stats/summary, so its Provider (pods, volumes, cgroups) is nil.
	c.Add(stats.CreateHandlers("/stats/", nil, summaryProvider{}))
	return c
}

// newResourceHandler returns the kubelet's /metrics/resource handler for
// node n. The collector has no request context, so each node has its own
// registry. Not safe to call concurrently with itself (component-base
// reads the build version from a package variable it swaps).
func newResourceHandler(n *node) http.Handler {
	return kubeletResourceHandler(summaryProvider{node: n})
}

// kubeletResourceHandler is the kubelet's /metrics/resource over p, as
// pkg/kubelet/server registers it.
func kubeletResourceHandler(p stats.SummaryProvider) http.Handler {
	reg := testutil.NewFakeKubeRegistry(kubeletVersion)
	reg.CustomMustRegister(collectors.NewResourceMetricsCollector(p))
	return metrics.HandlerFor(reg, metrics.HandlerOpts{ErrorHandling: metrics.ContinueOnError})
}
