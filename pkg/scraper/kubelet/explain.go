package kubelet

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// This file exports, for diagnostics (metrics-server doctor), the choices
// and explanations the client makes, so a diagnosis names the address the
// server uses and words a TLS failure as the server's log does.

// NodeAddress returns the host:port at which a Client built from cfg asks
// node's kubelet: the same choice GetMetrics makes (cfg's zero fields take
// their defaults). The error names the address types the node has and the
// flag to adjust.
func NodeAddress(node *corev1.Node, cfg Config) (string, error) {
	cfg.defaults()
	return hostPort(node, cfg.AddressTypes, cfg.DefaultPort, cfg.UseNodeStatusPort)
}

// ResourcePath returns the path of node's resource metrics endpoint: the
// node's ResourcePathAnnotation when set, else /metrics/resource.
func ResourcePath(node *corev1.Node) string {
	if p := node.Annotations[ResourcePathAnnotation]; p != "" {
		return p
	}
	return resourcePath
}

// NewRequest builds the GET a Client sends to node's kubelet at addr
// (host:port) with scheme: ResourcePath(node) when resource, else the
// summary with its query; with the client's Accept header and
// Accept-Encoding identity. The error is only for a nil ctx.
func NewRequest(ctx context.Context, scheme, addr string, node *corev1.Node, resource bool) (*http.Request, error) {
	if resource {
		return newRequest(ctx, scheme, addr, node, askResource)
	}
	return newRequest(ctx, scheme, addr, node, askSummary)
}

// ask is which answer a request asks a kubelet for.
type ask uint8

const (
	// askSummary: /stats/summary?only_cpu_and_memory=true.
	askSummary ask = iota
	// askResource: /metrics/resource, or the node's annotated path.
	askResource
	// askFullSummary: /stats/summary, filesystem stats included.
	askFullSummary
)

func newRequest(ctx context.Context, scheme, addr string, node *corev1.Node, a ask) (*http.Request, error) {
	u := url.URL{Scheme: scheme, Host: addr, Path: summaryPath, RawQuery: summaryQuery}
	accept := acceptJSON
	switch a {
	case askResource:
		u = url.URL{Scheme: scheme, Host: addr, Path: ResourcePath(node)}
		accept = acceptPrometheus
	case askFullSummary:
		u.RawQuery = ""
	}
	// The URL is set as built: rendering it to a string for
	// NewRequestWithContext to parse back was work done twice per scrape.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "", nil)
	if err != nil {
		return nil, err
	}
	req.URL, req.Host = &u, u.Host
	req.Header.Set("Accept", accept)
	// A kubelet compresses /metrics/resource when asked, costing it and us
	// more CPU than the bytes saved are worth inside a cluster (about
	// 12 KiB a node per resolution at 30 pods).
	req.Header.Set("Accept-Encoding", "identity")
	return req, nil
}

// SummaryPath and SummaryQuery are what the client asks for the summary.
const (
	SummaryPath  = summaryPath
	SummaryQuery = summaryQuery
)

// ExplainTLS says why a TLS connection to the kubelet at addr (host:port)
// failed with err, in the words of the client's errors: cause is what is
// wrong, fix what to do (empty when the cause names its own check). Both
// are empty when err is no TLS failure the client recognises.
func ExplainTLS(err error, addr string) (cause, fix string) {
	s := tlsCause(err, addr)
	if c, f, ok := strings.Cut(s, "; fix: "); ok {
		return c, f
	}
	return s, ""
}
