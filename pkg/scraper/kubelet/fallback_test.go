package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// htmlError is what a proxy or load balancer in front of a kubelet
// answers with: a 200 that is no exposition.
const htmlError = "<html><body>upstream connect error</body></html>"

// TestAutoBothFailKeepsBothErrors: when /metrics/resource fails and the
// /stats/summary fallback fails too, the error keeps both failures, and its
// reason is the one that needs fixing.
func TestAutoBothFailKeepsBothErrors(t *testing.T) {
	summary := readTestdata(t, "summary-pods.json")
	tests := []struct {
		name       string
		resource   answer
		summary    answer
		maxBytes   int64
		wantReason Reason
		wantStatus int
		wantInErr  []string
	}{
		{
			name:       "resource undecodable, summary 500: the decode failure is the reason",
			resource:   answer{200, htmlError, 0},
			summary:    answer{500, "failed to get imageFs stats", 0},
			wantReason: ReasonDecode,
			wantInErr:  []string{"resource /metrics/resource: ", "summary /stats/summary: http status 500: failed to get imageFs stats"},
		},
		{
			name:       "resource 404, summary undecodable: the summary's decode failure",
			resource:   answer{404, "404 page not found", 0},
			summary:    answer{200, `{"node": {"nodeName": `, 0},
			wantReason: ReasonDecode,
			wantInErr:  []string{"resource /metrics/resource: http status 404: 404 page not found", "summary /stats/summary: "},
		},
		{
			name:       "resource 403, summary 503: the summary's status",
			resource:   answer{403, "forbidden: nodes/metrics", 0},
			summary:    answer{503, "busy", 0},
			wantReason: ReasonHTTPStatus,
			wantStatus: 503,
			wantInErr:  []string{"resource /metrics/resource: http status 403: forbidden: nodes/metrics", "summary /stats/summary: http status 503: busy"},
		},
		{
			name:       "resource too large, summary too large: too large",
			resource:   answer{200, readTestdata(t, "resource-pods.txt"), 0},
			summary:    answer{200, summary, 0},
			maxBytes:   1024,
			wantReason: ReasonTooLarge,
			wantInErr:  []string{"resource /metrics/resource: body larger than 1024 bytes", "summary /stats/summary: body larger than 1024 bytes"},
		},
		{
			name:       "resource undecodable, summary times out: the decode failure",
			resource:   answer{200, htmlError, 0},
			summary:    answer{200, summary, 3 * time.Second},
			wantReason: ReasonDecode,
			wantInErr:  []string{"resource /metrics/resource: ", "summary /stats/summary: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &kubelet{}
			k.set(resourcePath, tt.resource)
			k.set(summaryPath, tt.summary)
			srv := httptest.NewTLSServer(k)
			defer srv.Close()
			c, _ := newTestClient(t, EndpointAuto, func(c *Config) { c.MaxResponseBytes = tt.maxBytes })
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := c.GetMetrics(ctx, nodeFor(t, srv))
			if err == nil {
				t.Fatal("got a batch, want an error")
			}
			if got := ReasonOf(err); got != tt.wantReason {
				t.Errorf("reason %s, want %s (err: %v)", got, tt.wantReason, err)
			}
			var se *ScrapeError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *ScrapeError", err)
			}
			if se.Status != tt.wantStatus {
				t.Errorf("status %d, want %d", se.Status, tt.wantStatus)
			}
			msg := err.Error()
			for _, want := range append([]string{`scraping node "worker-1" at 127.0.0.1:`}, tt.wantInErr...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			// The joined error holds the very error /metrics/resource alone fails with.
			rc, _ := newTestClient(t, EndpointResource, func(c *Config) { c.MaxResponseBytes = tt.maxBytes })
			rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
			defer rcancel()
			_, rerr := rc.GetMetrics(rctx, nodeFor(t, srv))
			var alone *ScrapeError
			if !errors.As(rerr, &alone) {
				t.Fatalf("resource alone: %v, want a *ScrapeError", rerr)
			}
			if !strings.Contains(msg, "resource /metrics/resource: "+alone.Err.Error()+"; summary") {
				t.Errorf("error %q does not keep the resource error %q", msg, alone.Err)
			}
		})
	}
}

// TestFallbackLoggedOnceWithCause: a node whose /metrics/resource cannot
// be decoded but whose /stats/summary works is served, and the fallback is
// logged once, at the default verbosity, with the decode error; its return
// to /metrics/resource is logged once too. A fallback for a 404 is expected
// (old kubelets, emulators) and logged only at V(2).
func TestFallbackLoggedOnceWithCause(t *testing.T) {
	for _, tt := range []struct {
		name     string
		resource answer
		// then, when set, replaces the resource answer before the first retry.
		then      *answer
		wantLines int // at verbosity 0: the fallback and the return
		wantInLog string
	}{
		{name: "undecodable", resource: answer{200, htmlError, 0}, wantLines: 2, wantInLog: "decode"},
		{name: "404", resource: answer{404, "404 page not found", 0}, wantLines: 0},
		{name: "404, then undecodable", resource: answer{404, "404 page not found", 0}, then: &answer{200, htmlError, 0}, wantLines: 2, wantInLog: "decode"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := &kubelet{}
			k.set(resourcePath, tt.resource)
			k.set(summaryPath, answer{200, readTestdata(t, "summary-pods.json"), 0})
			srv := httptest.NewTLSServer(k)
			defer srv.Close()
			c, clk := newTestClient(t, EndpointAuto, func(c *Config) { c.RetryPreferredAfter = 10 * time.Minute })
			logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(0), ktesting.BufferLogs(true)))
			ctx := klog.NewContext(context.Background(), logger)
			node := nodeFor(t, srv)
			// Three scrapes on the fallback, then /metrics/resource is retried
			// (and fails again) twice, then it works.
			for i := range 35 {
				if i == 5 && tt.then != nil {
					k.set(resourcePath, *tt.then)
				}
				if i == 25 {
					k.set(resourcePath, answer{200, readTestdata(t, "resource-pods.txt"), 0})
				}
				if _, err := c.GetMetrics(ctx, node); err != nil {
					t.Fatalf("scrape %d: %v", i, err)
				}
				clk.Step(time.Minute)
			}
			if got := k.count(resourcePath); got != 3+5 {
				t.Errorf("resource asked %d times, want 8 (the first, two retries, then every scrape)", got)
			}
			entries := logger.GetSink().(ktesting.Underlier).GetBuffer().Data()
			if len(entries) != tt.wantLines {
				t.Fatalf("%d log entries at verbosity 0, want %d:\n%s", len(entries), tt.wantLines, logger.GetSink().(ktesting.Underlier).GetBuffer().String())
			}
			if tt.wantLines == 0 {
				return
			}
			first := fmt.Sprint(entries[0].Message, entries[0].ParameterKVList)
			for _, want := range []string{"Falling back to /stats/summary", "worker-1", tt.wantInLog} {
				if !strings.Contains(first, want) {
					t.Errorf("fallback entry %q does not contain %q", first, want)
				}
			}
			if !strings.Contains(entries[1].Message, "Back on /metrics/resource") {
				t.Errorf("second entry %q, want the return to /metrics/resource", entries[1].Message)
			}
		})
	}
}

// TestBothFailedError: the joined error of both endpoints unwraps to each
// cause, so that errors.Is finds a cancellation in either.
func TestBothFailedError(t *testing.T) {
	res := &ScrapeError{Node: "n", Address: "10.0.0.1:10250", Endpoint: resourcePath, Reason: ReasonHTTPStatus, Status: 404, Err: errors.New("http status 404")}
	sum := &ScrapeError{Node: "n", Address: "10.0.0.1:10250", Endpoint: summaryPath, Reason: ReasonConnection, Err: fmt.Errorf("dial: %w", context.Canceled)}
	err := bothFailed(res, sum)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled) = false", err)
	}
	if ReasonOf(err) != ReasonConnection {
		t.Errorf("reason %s, want the summary's (connection)", ReasonOf(err))
	}
	want := `scraping node "n" at 10.0.0.1:10250: resource /metrics/resource: http status 404; summary /stats/summary: dial: context canceled`
	if err.Error() != want {
		t.Errorf("error\n%q\nwant\n%q", err, want)
	}
}
