package kubelet

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStatusErrorBodyOnOneLine: a kubelet's error body goes into the error
// on one line, its trailing newline and surrounding blanks trimmed and each
// inner run of blanks or control characters one space, so the joined error
// of both endpoints reads "...: Unauthorized; summary ...". An empty body
// leaves the status alone, without a dangling colon.
func TestStatusErrorBodyOnOneLine(t *testing.T) {
	tests := []struct {
		name     string
		resource answer
		summary  answer
		want     string // the error after `scraping node "worker-1" at <addr>: `
	}{
		{
			name:     "the kubelet's 401 with its trailing newline",
			resource: answer{401, "Unauthorized\n", 0},
			summary:  answer{401, "Unauthorized\n", 0},
			want:     "resource /metrics/resource: http status 401: Unauthorized; summary /stats/summary: http status 401: Unauthorized",
		},
		{
			name:     "cri-o's imageFs error over lines, CRLF and tabs",
			resource: answer{404, "404 page not found\n", 0},
			summary:  answer{500, "  failed to get imageFs stats:\r\n\tunable to find data in memory cache \n\n", 0},
			want:     "resource /metrics/resource: http status 404: 404 page not found; summary /stats/summary: http status 500: failed to get imageFs stats: unable to find data in memory cache",
		},
		{
			name:     "a 403 naming the permission, with a trailing newline",
			resource: answer{403, "Forbidden (user=system:serviceaccount:kube-system:metrics-server, verb=get, resource=nodes, subresource=metrics)\n", 0},
			summary:  answer{403, "Forbidden (user=system:serviceaccount:kube-system:metrics-server, verb=get, resource=nodes, subresource=stats)\n", 0},
			want: "resource /metrics/resource: http status 403: Forbidden (user=system:serviceaccount:kube-system:metrics-server, verb=get, resource=nodes, subresource=metrics); " +
				"summary /stats/summary: http status 403: Forbidden (user=system:serviceaccount:kube-system:metrics-server, verb=get, resource=nodes, subresource=stats)",
		},
		{
			name:     "empty and blank bodies: the status alone",
			resource: answer{503, "", 0},
			summary:  answer{502, " \n", 0},
			want:     "resource /metrics/resource: http status 503; summary /stats/summary: http status 502",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &kubelet{}
			k.set(resourcePath, tt.resource)
			k.set(summaryPath, tt.summary)
			srv := httptest.NewTLSServer(k)
			defer srv.Close()
			c, _ := newTestClient(t, EndpointAuto, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := c.GetMetrics(ctx, nodeFor(t, srv))
			if err == nil {
				t.Fatal("got a batch, want an error")
			}
			msg := err.Error()
			_, rest, ok := strings.Cut(msg, srv.Listener.Addr().String()+": ")
			if !ok {
				t.Fatalf("error %q does not name the address %s", msg, srv.Listener.Addr())
			}
			if rest != tt.want {
				t.Errorf("error after the address\n%q\nwant\n%q", rest, tt.want)
			}
		})
	}
}

// TestSnippet: the body excerpt is on one line, trimmed, cut at 256 bytes on
// a rune boundary.
func TestSnippet(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name, body, want string
	}{
		{"plain", "busy", "busy"},
		{"trailing newline", "Unauthorized\n", "Unauthorized"},
		{"inner lines and tabs", "a\n\n\tb\r\nc", "a b c"},
		{"leading blanks", "\n  x", "x"},
		{"NUL and DEL", "a\x00\x7fb", "a b"},
		{"only blanks", " \r\n\t", ""},
		{"cut on a rune boundary", long, strings.Repeat("é", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := snippet(strings.NewReader(tt.body)); got != tt.want {
				t.Errorf("snippet(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}
