package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubemetrics/metrics-server/pkg/scraper"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// fakeNodes holds statuses by name.
type fakeNodes map[string]scraper.NodeStatus

func (f fakeNodes) NodeStatuses(failingOnly bool) []scraper.NodeStatus {
	var out []scraper.NodeStatus
	for _, n := range f {
		if !failingOnly || n.Reason != "" {
			out = append(out, n)
		}
	}
	return out
}

func (f fakeNodes) NodeStatus(name string) (scraper.NodeStatus, bool) {
	n, ok := f[name]
	return n, ok
}

type fakePods map[string]storage.PodReason

func (f fakePods) PodReason(namespace, name string) storage.PodReason {
	if r, ok := f[namespace+"/"+name]; ok {
		return r
	}
	return storage.PodReason{Code: storage.PodNotReported, Message: "no kubelet listed the pod"}
}

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

// fleet is 40 healthy nodes and three failing ones.
func fleet() fakeNodes {
	f := fakeNodes{}
	for i := range 40 {
		name := fmt.Sprintf("worker-%02d", i)
		f[name] = scraper.NodeStatus{Node: name, Address: fmt.Sprintf("10.0.3.%d:10250", i), Endpoint: "/metrics/resource",
			LastAttempt: t0, LastSuccess: t0.Add(180 * time.Millisecond), Duration: 180 * time.Millisecond}
	}
	f["gpu-1"] = scraper.NodeStatus{Node: "gpu-1", Address: "10.0.9.1:10250", Endpoint: "/stats/summary", LastAttempt: t0,
		LastFailure: t0.Add(10 * time.Second), Duration: 10 * time.Second, ConsecutiveFailures: 7, Reason: "timeout", Slow: true,
		LastError: errors.New(`scraping node "gpu-1" at 10.0.9.1:10250 /stats/summary: context deadline exceeded`)}
	f["edge-2"] = scraper.NodeStatus{Node: "edge-2", Address: "10.0.8.2:10250", Endpoint: "/metrics/resource", LastAttempt: t0,
		LastFailure: t0.Add(3 * time.Millisecond), Duration: 3 * time.Millisecond, ConsecutiveFailures: 2, Reason: "tls",
		LastError: errors.New(strings.Repeat("x509: certificate is valid for edge-2, not 10.0.8.2; ", 100))}
	f["edge-3"] = scraper.NodeStatus{Node: "edge-3", LastAttempt: t0, ConsecutiveFailures: 1, Reason: "no_address",
		LastError: errors.New("node has none of the address types [InternalIP]")}
	return f
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestNodeList(t *testing.T) {
	h := NewHandler(Config{Nodes: fleet(), Pods: fakePods{}, DefaultLimit: 10, MaxLimit: 100})
	tests := []struct {
		path          string
		wantCode      int
		wantNodes     []string // first nodes, in order
		wantLen       int
		wantTruncated bool
	}{
		{path: "/status/nodes", wantCode: 200, wantNodes: []string{"gpu-1", "edge-2", "edge-3", "worker-00", "worker-01"}, wantLen: 10, wantTruncated: true},
		{path: "/status/nodes?failing=true", wantCode: 200, wantNodes: []string{"gpu-1", "edge-2", "edge-3"}, wantLen: 3},
		{path: "/status/nodes?limit=2&failing=true", wantCode: 200, wantNodes: []string{"gpu-1", "edge-2"}, wantLen: 2, wantTruncated: true},
		{path: "/status/nodes/?limit=100", wantCode: 200, wantNodes: []string{"gpu-1", "edge-2", "edge-3", "worker-00"}, wantLen: 43},
		{path: "/status/nodes?limit=101", wantCode: 400},
		{path: "/status/nodes?limit=0", wantCode: 400},
		{path: "/status/nodes?failing=maybe", wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, h, http.MethodGet, tt.path)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tt.wantCode, body)
			}
			if code != 200 {
				var e Error
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q is not an Error (%v)", body, err)
				}
				return
			}
			var list NodeList
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatal(err)
			}
			if list.Total != 43 || list.Failing != 3 || list.Truncated != tt.wantTruncated || len(list.Nodes) != tt.wantLen {
				t.Errorf("total %d, failing %d, truncated %v, %d nodes; want 43, 3, %v, %d", list.Total, list.Failing, list.Truncated, len(list.Nodes), tt.wantTruncated, tt.wantLen)
			}
			var names []string
			for _, n := range list.Nodes[:min(len(tt.wantNodes), len(list.Nodes))] {
				names = append(names, n.Node)
			}
			if diff := cmp.Diff(tt.wantNodes, names); diff != "" {
				t.Errorf("first nodes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOneNode(t *testing.T) {
	h := NewHandler(Config{Nodes: fleet(), Pods: fakePods{}})
	code, body := get(t, h, http.MethodGet, "/status/nodes/edge-2")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var n Node
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatal(err)
	}
	failure := t0.Add(3 * time.Millisecond)
	want := Node{Node: "edge-2", Address: "10.0.8.2:10250", Endpoint: "/metrics/resource", Lane: "fast", LastAttempt: &t0,
		LastFailure: &failure, DurationSeconds: 0.003, ConsecutiveFailures: 2, Reason: "tls"}
	// MaxErrorBytes bounds the answer's error, the mark of the cut
	// included (it used to be three bytes past it).
	if len(n.LastError) != MaxErrorBytes || !strings.HasSuffix(n.LastError, "...") || !strings.HasPrefix(n.LastError, "x509: certificate is valid for edge-2, not 10.0.8.2") {
		t.Errorf("last error %d bytes, starting %.60q; want it clipped to %d, the cut marked", len(n.LastError), n.LastError, MaxErrorBytes)
	}
	n.LastError = ""
	if diff := cmp.Diff(want, n); diff != "" {
		t.Errorf("node (-want +got):\n%s", diff)
	}
	if code, body := get(t, h, http.MethodGet, "/status/nodes/worker-99"); code != 404 || !strings.Contains(body, "worker-99") {
		t.Errorf("unknown node: %d %s", code, body)
	}
	for _, p := range []string{"/status/", "/status/pods/shop", "/status/nodes/a/b", "/status/pods//web"} {
		if code, _ := get(t, h, http.MethodGet, p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	if code, _ := get(t, h, http.MethodPost, "/status/nodes"); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}
}

func TestPodAnswer(t *testing.T) {
	running := map[string]bool{"shop/web": true, "shop/api": true, "shop/cache": true}
	h := NewHandler(Config{
		Nodes: fleet(),
		Pods: fakePods{
			"shop/web": {Code: storage.PodServed, Node: "worker-03", Message: "served from the kubelet of node worker-03"},
			"shop/api": {Code: storage.PodOnePoint, Node: "gpu-1", Container: "api", Message: "container api (node gpu-1) has one sample"},
		},
		Running: func(ns, name string) (bool, error) { return running[ns+"/"+name], nil },
	})
	tests := []struct {
		pod            string
		want           Pod
		wantNodeStatus bool
	}{
		{pod: "shop/web", want: Pod{Served: true, Reason: storage.PodServed, Node: "worker-03"}},
		{pod: "shop/api", want: Pod{Reason: storage.PodOnePoint, Node: "gpu-1", Container: "api"}, wantNodeStatus: true},
		{pod: "shop/cache", want: Pod{Reason: storage.PodNotReported}},
		{pod: "shop/migrate", want: Pod{Reason: PodNotRunning}},
	}
	for _, tt := range tests {
		t.Run(tt.pod, func(t *testing.T) {
			code, body := get(t, h, http.MethodGet, "/status/pods/"+tt.pod)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			var got Pod
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Message == "" {
				t.Error("no message")
			}
			if (got.NodeStatus != nil) != tt.wantNodeStatus || (got.NodeStatus != nil && got.NodeStatus.Node != got.Node) {
				t.Errorf("node status %+v, want one: %v", got.NodeStatus, tt.wantNodeStatus)
			}
			tt.want.Namespace, tt.want.Name, _ = strings.Cut(tt.pod, "/")
			got.Message, got.NodeStatus = "", nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
		})
	}
}
