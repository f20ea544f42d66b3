package e2edoctor

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// nodeEvents lists our server's events on node by reason, from
// events.k8s.io/v1 in namespace default, where a Node's events live.
func nodeEvents(t *testing.T, node string) map[string][]eventsv1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := e.client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]eventsv1.Event{}
	for _, ev := range list.Items {
		if ev.Regarding.Kind == "Node" && ev.Regarding.Name == node && ev.ReportingController == "metrics-server" {
			out[ev.Reason] = append(out[ev.Reason], ev)
		}
	}
	return out
}

// waitNodeEvent waits, for at most limit, until node has an event of
// reason, and returns the node's events.
func waitNodeEvent(t *testing.T, node, reason string, limit time.Duration) map[string][]eventsv1.Event {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		evs := nodeEvents(t, node)
		if len(evs[reason]) > 0 {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event on node %s after %v: %+v", reason, node, limit, evs)
		}
		time.Sleep(time.Second)
	}
}

// describeNode is `kubectl describe node` as the admin.
func describeNode(t *testing.T, node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := e.cluster.Kubectl(ctx, "describe", "node", node)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNodeEventsOnScrapeFailure: a kubelet whose certificate lacks the IP
// SAN the server asks for gets, after two failed scrapes, one Warning
// MetricsScrapeFailed naming the cause, which kubectl describe node shows,
// and no other after a third; once the certificate is right again, one
// Normal MetricsScrapeRecovered.
// It runs beside TestStatusPodReason (see there).
func TestNodeEventsOnScrapeFailure(t *testing.T) {
	t.Parallel()
	name := fleet.Config{Prefix: "doc"}.NodeName(3)
	if evs := nodeEvents(t, name); len(evs) != 0 {
		t.Fatalf("node %s has events of ours before it broke: %+v", name, evs)
	}
	_, ip := breakNode(t, 3, fleet.ModeHostnameOnlyCert)
	began := time.Now()
	evs := waitNodeEvent(t, name, "MetricsScrapeFailed", 3*resolution)
	t.Logf("Warning on %s %v after it broke", name, time.Since(began).Round(time.Second))
	cause := fmt.Sprintf("scraping node %q at %s /metrics/resource: the kubelet's serving certificate has no IP SAN for the address asked, %s (its SANs: DNS:%s)",
		name, kubeletAddr(ip), ip, name)
	wantNote := "metrics-server cannot scrape the kubelet (tls, 2 times in a row), so the node and its pods have no metrics: " + cause
	if w := evs["MetricsScrapeFailed"]; len(w) != 1 || w[0].Type != "Warning" || !strings.HasPrefix(w[0].Note, wantNote) {
		t.Errorf("MetricsScrapeFailed events %+v, want one Warning starting %q", w, wantNote)
	}
	describe := regexp.MustCompile(`(?m)^\s+Warning\s+MetricsScrapeFailed\s+\d+s\s+metrics-server\s+` + regexp.QuoteMeta(wantNote))
	if out := describeNode(t, name); !describe.MatchString(out) {
		t.Errorf("kubectl describe node %s has no line %s:\n%s", name, describe, out)
	}

	// A third failure writes no second Warning: one per episode.
	waitFailures(t, name, 3, 2*resolution)
	if err := e.fleet.SetMode(name, fleet.ModeNormal); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	evs = waitNodeEvent(t, name, "MetricsScrapeRecovered", 2*resolution)
	t.Logf("Normal on %s %v after it was fixed", name, time.Since(fixed).Round(time.Second))
	recovered := regexp.MustCompile(`^metrics-server scrapes the kubelet again after ([3-9]|\d\d) failed scrapes$`)
	if n := evs["MetricsScrapeRecovered"]; len(n) != 1 || n[0].Type != "Normal" || !recovered.MatchString(n[0].Note) {
		t.Errorf("MetricsScrapeRecovered events %+v, want one Normal matching %s", n, recovered)
	}
	// One Warning for the episode: not repeated while the node failed
	// (a repeat would be a second event or a series on the first).
	if w := evs["MetricsScrapeFailed"]; len(w) != 1 || w[0].Series != nil {
		t.Errorf("after the episode, MetricsScrapeFailed events %+v, want one without a series", w)
	}
	out := describeNode(t, name)
	if _, events, ok := strings.Cut(out, "\nEvents:"); ok {
		t.Logf("kubectl describe node %s after the episode, its events:%s", name, events)
	}
	for _, re := range []*regexp.Regexp{describe,
		regexp.MustCompile(`(?m)^\s+Normal\s+MetricsScrapeRecovered\s+\d+s\s+metrics-server\s+metrics-server scrapes the kubelet again after ([3-9]|\d\d) failed scrapes$`)} {
		if !re.MatchString(out) {
			t.Errorf("kubectl describe node %s has no line %s:\n%s", name, re, out)
		}
	}
	if n := strings.Count(out, "MetricsScrapeFailed"); n != 1 {
		t.Errorf("kubectl describe node %s shows %d MetricsScrapeFailed lines, want 1", name, n)
	}
}
