package server

import (
	"net/http"
	"strings"

	"k8s.io/metrics/pkg/apis/metrics"
)

// withHeadDiscovery answers HEAD on the metrics API's discovery documents,
// /apis/metrics.k8s.io and /apis/metrics.k8s.io/<version>, as the GET of
// the same path without its body. Load-aware schedulers send HEAD to
// /apis/metrics.k8s.io/v1beta1 as a health check and the aggregator proxies
// it to us, but the generic server's discovery routes take GET only and
// answered 405. Every other request, HEAD or not, goes to next unchanged.
//
// It sits innermost, after authentication and authorization, so the request
// is still authorized as what it is (non-resource verb "head").
func withHeadDiscovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodHead || !isMetricsDiscoveryPath(req.URL.Path) {
			next.ServeHTTP(w, req)
			return
		}
		get := req.Clone(req.Context())
		get.Method = http.MethodGet
		next.ServeHTTP(headWriter{w}, get)
	})
}

// isMetricsDiscoveryPath reports whether path is /apis/metrics.k8s.io or
// /apis/metrics.k8s.io/<one segment>, with or without a trailing slash.
func isMetricsDiscoveryPath(path string) bool {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(path, "/"), "/apis/"+metrics.GroupName)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	version, ok := strings.CutPrefix(rest, "/")
	return ok && version != "" && !strings.Contains(version, "/")
}

// headWriter passes the status and headers through and drops the body, as
// a HEAD response has none.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(b []byte) (int, error) { return len(b), nil }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
