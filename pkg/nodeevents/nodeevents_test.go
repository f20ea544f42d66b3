package nodeevents

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)}}
}

var errTimeout = errors.New(`scraping node "worker-1" at 10.0.3.1:10250 /metrics/resource: context deadline exceeded`)

// written is an event as kubectl describe node shows it.
type written struct {
	Node, Type, Reason string
}

// eventsOf returns the events written so far, by node and reason.
func eventsOf(t *testing.T, c *fake.Clientset) []written {
	t.Helper()
	list, err := c.EventsV1().Events(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []written
	for _, e := range list.Items {
		if e.Regarding.Kind != "Node" || e.Namespace != metav1.NamespaceDefault || e.ReportingController != "metrics-server" || !strings.HasPrefix(e.Action, "Scrape") {
			t.Errorf("event %s: regarding %s %s in namespace %q by %q, action %q; want a Node, default, metrics-server, Scrape...",
				e.Name, e.Regarding.Kind, e.Regarding.Name, e.Namespace, e.ReportingController, e.Action)
		}
		if len(e.Note) > 1024 {
			t.Errorf("event %s: note of %d bytes, over the API's limit", e.Name, len(e.Note))
		}
		out = append(out, written{e.Regarding.Name, e.Type, e.Reason})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// waitEvents waits until n events are written, then a moment more to see
// that no other comes.
func waitEvents(t *testing.T, c *fake.Clientset, n int) []written {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(eventsOf(t, c)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return eventsOf(t, c)
}

func start(t *testing.T, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOneEventPerChange: a Warning after the second failure in a row, none
// for the next ones, a Normal at recovery; a single failure writes nothing.
func TestOneEventPerChange(t *testing.T) {
	c := fake.NewClientset()
	r := New(Config{Client: c, Clock: clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))})
	start(t, r)
	w1, w2 := node("worker-1"), node("worker-2")
	for i := 1; i <= 5; i++ {
		r.NodeFailed(w1, i, "timeout", errTimeout)
	}
	r.NodeFailed(w2, 1, "connection", errors.New("connection refused"))
	r.NodeRecovered(w2, 1)
	r.NodeRecovered(w1, 5)
	// A second episode gets its own pair.
	r.NodeFailed(w1, 1, "tls", errors.New("x509: certificate has expired"))
	r.NodeFailed(w1, 2, "tls", errors.New("x509: certificate has expired"))
	want := []written{
		{"worker-1", corev1.EventTypeWarning, ReasonFailed},
		{"worker-1", corev1.EventTypeWarning, ReasonFailed},
		{"worker-1", corev1.EventTypeNormal, ReasonRecovered},
	}
	if diff := cmp.Diff(want, waitEvents(t, c, len(want))); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	list, err := c.EventsV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range list.Items {
		notes = append(notes, e.Note)
	}
	all := strings.Join(notes, "\n")
	for _, words := range []string{"timeout, 2 times in a row", "context deadline exceeded", "x509: certificate has expired", "again after 5 failed scrapes"} {
		if !strings.Contains(all, words) {
			t.Errorf("no note says %q:\n%s", words, all)
		}
	}
}

// TestCapPerMinute: eight nodes failing at once with a cap of five get five
// Warnings; the three dropped get theirs with a failure in the next
// minute; a node whose Warning was dropped gets no Normal.
func TestCapPerMinute(t *testing.T) {
	c := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))
	r := New(Config{Client: c, PerMinute: 5, Clock: clk})
	start(t, r)
	var nodes []*corev1.Node
	for i := range 8 {
		nodes = append(nodes, node(fmt.Sprintf("worker-%d", i)))
	}
	for _, n := range nodes {
		r.NodeFailed(n, 1, "timeout", errTimeout)
		r.NodeFailed(n, 2, "timeout", errTimeout)
	}
	if got := waitEvents(t, c, 5); len(got) != 5 {
		t.Fatalf("%d events in the first minute, want 5: %v", len(got), got)
	}
	// The last node recovers unwarned: nothing to say.
	r.NodeRecovered(nodes[7], 2)
	clk.Step(time.Minute)
	for _, n := range nodes[5:7] {
		r.NodeFailed(n, 3, "timeout", errTimeout)
	}
	got := waitEvents(t, c, 7)
	var warned []string
	for _, e := range got {
		if e.Reason != ReasonFailed {
			t.Errorf("unexpected %+v", e)
		}
		warned = append(warned, e.Node)
	}
	want := []string{"worker-0", "worker-1", "worker-2", "worker-3", "worker-4", "worker-5", "worker-6"}
	if diff := cmp.Diff(want, warned); diff != "" {
		t.Errorf("warned nodes (-want +got):\n%s", diff)
	}
}

// TestForbiddenEvents: without permission to write events the recorder
// logs that once and goes on; once permitted, events are written.
func TestForbiddenEvents(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	klog.SetLogger(logger)
	t.Cleanup(klog.ClearLogger)
	buf := logger.GetSink().(ktesting.Underlier).GetBuffer()

	c := fake.NewClientset()
	var forbidden atomic.Bool
	forbidden.Store(true)
	var refused atomic.Int64
	c.PrependReactor("*", "events", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if !forbidden.Load() {
			return false, nil, nil
		}
		refused.Add(1)
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "",
			errors.New(`User "system:serviceaccount:kube-system:metrics-server" cannot create resource "events"`))
	})
	r := New(Config{Client: c, Clock: clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))})
	start(t, r)
	for i := range 4 {
		n := node(fmt.Sprintf("worker-%d", i))
		r.NodeFailed(n, 2, "timeout", errTimeout)
		r.NodeRecovered(n, 2)
	}
	deadline := time.Now().Add(10 * time.Second)
	for refused.Load() < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if refused.Load() != 8 {
		t.Fatalf("%d event writes refused, want 8 (no retries)", refused.Load())
	}
	if n := strings.Count(buf.String(), "Cannot write Node events"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once:\n%s", n, buf.String())
	}
	if strings.Contains(buf.String(), "Server rejected event") {
		t.Errorf("client-go logged the refused events:\n%s", buf.String())
	}
	forbidden.Store(false)
	r.NodeFailed(node("worker-9"), 2, "timeout", errTimeout)
	if diff := cmp.Diff([]written{{"worker-9", corev1.EventTypeWarning, ReasonFailed}}, waitEvents(t, c, 1)); diff != "" {
		t.Errorf("events once permitted (-want +got):\n%s", diff)
	}
}
