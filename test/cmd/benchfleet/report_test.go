package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func loadResults() []Result {
	sa := "system:serviceaccount:kube-system:metrics-server"
	idle := &APIServerLoad{
		CPUSecondsPerMinute: 1.00, AllocMiBPerMinute: 100, GCPerMinute: 1,
		Requests: []RequestCount{{Verb: "PUT", Resource: "apiregistration.k8s.io/v1/apiservices/status", Code: "200", PerMin: 1}},
	}
	ours := Result{Name: "kubemetrics", Nodes: 300, Pods: 30, Containers: 2, ResolutionSeconds: 15, List: map[string]Latency{}, APIServerIdle: idle,
		APIServer: &APIServerLoad{
			CPUSecondsPerMinute: 2.10, AllocMiBPerMinute: 900, GCPerMinute: 3.5,
			Requests: []RequestCount{
				{Verb: "POST", Resource: "authorization.k8s.io/v1/subjectaccessreviews", Code: "201", PerMin: 12},
				{Verb: "PUT", Resource: "apiregistration.k8s.io/v1/apiservices/status", Code: "200", PerMin: 1},
			},
			Audit: []RequestCount{
				{User: sa, UserAgent: "metrics-server/v0.2.0", Verb: "create", Resource: "authorization.k8s.io/v1/subjectaccessreviews", Code: "201", PerMin: 12},
			},
			ServerAudit: []RequestCount{{User: "system:kube-aggregator", Verb: "get", Resource: "/openapi/v2", Code: "200", PerMin: 2}},
			Counters:    map[string]float64{`aggregator_openapi_v2_regeneration_count{apiservice="v1.metrics.k8s.io",reason="update"}`: 1},
		}}
	upstream := Result{Name: "upstream", Nodes: 300, Pods: 30, Containers: 2, ResolutionSeconds: 15, List: map[string]Latency{}, APIServerIdle: idle,
		APIServer: &APIServerLoad{
			CPUSecondsPerMinute: 1.40, AllocMiBPerMinute: 300, GCPerMinute: 2,
			Requests: []RequestCount{{Verb: "POST", Resource: "authorization.k8s.io/v1/subjectaccessreviews", Code: "201", PerMin: 3}},
			Audit: []RequestCount{
				{User: sa, UserAgent: "metrics-server/v0.0.0", Verb: "create", Resource: "authorization.k8s.io/v1/subjectaccessreviews", Code: "201", PerMin: 3},
			},
			ServerAudit: []RequestCount{{User: "system:kube-aggregator", Verb: "get", Resource: "/openapi/v2", Code: "304", PerMin: 2}},
		}}
	return []Result{ours, upstream}
}

// The kube-apiserver's section: CPU beside the idle window and what is
// above it, then the request tables side by side with a 0 where a
// server made no such request.
func TestMarkdownAPIServerLoad(t *testing.T) {
	md := markdown(loadResults())
	_, section, ok := strings.Cut(md, "The kube-apiserver in each steady window")
	if !ok {
		t.Fatalf("no kube-apiserver section in:\n%s", md)
	}
	want := ` (CPU: utime+stime of its process; requests: its apiserver_request_total, a minute):

| while running | kube-apiserver CPU s/min | above idle | allocated MiB/min | GC cycles/min | requests/min | requests/min by the server's user (audit) | requests/min to the server (its audit log) |
|---|---|---|---|---|---|---|---|
| no server (idle) | 1.00 | - | 100 | 1.0 | 1.0 | 0.0 | 0.0 |
| kubemetrics | 2.10 | 1.10 | 900 | 3.5 | 13.0 | 12.0 | 2.0 |
| upstream | 1.40 | 0.40 | 300 | 2.0 | 3.0 | 3.0 | 2.0 |

Requests the kube-apiserver served, a minute (apiserver_request_total):

| verb | resource | code | no server (idle) | kubemetrics | upstream |
|---|---|---|---|---|---|
| POST | authorization.k8s.io/v1/subjectaccessreviews | 201 | 0.0 | 12.0 | 3.0 |
| PUT | apiregistration.k8s.io/v1/apiservices/status | 200 | 1.0 | 1.0 | 0.0 |

The same by user and user agent, a minute (the kube-apiserver's audit log; requests received in the window):

| user | user agent | verb | resource or path | code | no server (idle) | kubemetrics | upstream |
|---|---|---|---|---|---|---|---|
| system:serviceaccount:kube-system:metrics-server | metrics-server/v0.2.0 | create | authorization.k8s.io/v1/subjectaccessreviews | 201 | 0.0 | 12.0 | 0.0 |
| system:serviceaccount:kube-system:metrics-server | metrics-server/v0.0.0 | create | authorization.k8s.io/v1/subjectaccessreviews | 201 | 0.0 | 0.0 | 3.0 |

Requests the server under test received, a minute (its own audit log: the aggregator's discovery, OpenAPI and availability checks, and what it proxied):

| user | user agent | verb | resource or path | code | no server (idle) | kubemetrics | upstream |
|---|---|---|---|---|---|---|---|
| system:kube-aggregator | - | get | /openapi/v2 | 200 | 0.0 | 2.0 | 0.0 |
| system:kube-aggregator | - | get | /openapi/v2 | 304 | 0.0 | 0.0 | 2.0 |

Other counters of the kube-apiserver that moved, a minute (watch events sent, the aggregator's work):

| counter | no server (idle) | kubemetrics | upstream |
|---|---|---|---|
| ` + "`" + `aggregator_openapi_v2_regeneration_count{apiservice="v1.metrics.k8s.io",reason="update"}` + "`" + ` | 0.0 | 1.0 | 0.0 |
`
	if d := cmp.Diff(want, section); d != "" {
		t.Errorf("kube-apiserver section (-want +got):\n%s", d)
	}
}

// The summary carries the kube-apiserver's CPU and its ratio, plain and
// above the shared idle window: (2.10-1.00)/(1.40-1.00) = 2.75.
func TestSummaryAPIServerRatio(t *testing.T) {
	dir := t.TempDir()
	rs := loadResults()
	if err := writeJSON(filepath.Join(dir, "results-300.json"), rs); err != nil {
		t.Fatal(err)
	}
	if err := summarize(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 300 | kubemetrics | 0.00 | 0.0000 | 0 | 0.0 | 0.0 / 0.0 | 0.00 / 0.00 | 0 | 0 | 0 | 0.00 | 2.10 (1.00) |",
		"| 300 | upstream | 0.00 | 0.0000 | 0 | 0.0 | 0.0 / 0.0 | 0.00 / 0.00 | 0 | 0 | 0 | 0.00 | 1.40 (1.00) |",
		"| 300 | upstream | 0.00 | 0.00 | 0.00 | 0.00 | 1.50 | 2.75 |",
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("summary.md lacks %q:\n%s", want, b)
		}
	}
}

func TestMarkdownConsumerLoad(t *testing.T) {
	rs := loadResults()
	if strings.Contains(markdown(rs), "descheduler") {
		t.Fatal("a consumer section without a consumer run")
	}
	rs[0].CPUSecondsPerMinute, rs[1].CPUSecondsPerMinute = 0.70, 3.30
	rs[0].Consumer = &ConsumerLoad{PeriodSeconds: 5, WindowSeconds: 60.2, Rounds: 12, Requests: 3600, Errors: 0, PerSecond: 59.8, WantPerSecond: 60,
		P50: 4.2, P99: 19.5, ServerCPUSecondsPerMinute: 2.5, APIServerCPUSecondsPerMinute: 9.1}
	rs[1].Consumer = &ConsumerLoad{PeriodSeconds: 5, WindowSeconds: 61, Rounds: 12, LateRounds: 3, Requests: 3598, Errors: 2, PerSecond: 59, WantPerSecond: 60,
		P50: 6.3, P99: 40.1, ServerCPUSecondsPerMinute: 6.25, APIServerCPUSecondsPerMinute: 10.4}
	rs[1].APIServer = nil
	_, section, ok := strings.Cut(markdown(rs), "The descheduler's pattern")
	if !ok {
		t.Fatal("no consumer section")
	}
	section, _, _ = strings.Cut(section, "\nThe kube-apiserver in each steady window")
	want := ` after the LISTs: a GET of every node's NodeMetrics through the kube-apiserver (JSON), each node once every 5s, spread over the period, for 60 s; CPU beside the steady window's without it:

| binary | GETs/s (wanted) | p50 / p99 ms | errors | rounds late | server CPU s/min (steady) | kube-apiserver CPU s/min (steady) |
|---|---|---|---|---|---|---|
| kubemetrics | 60 (60) | 4.2 / 19.5 | 0 of 3600 | 0 of 12 | 2.50 (0.70) | 9.10 (2.10) |
| upstream | 59 (60) | 6.3 / 40.1 | 2 of 3598 | 3 of 12 | 6.25 (3.30) | 10.40 (-) |
`
	if d := cmp.Diff(want, section); d != "" {
		t.Errorf("consumer section (-want +got):\n%s", d)
	}
}
