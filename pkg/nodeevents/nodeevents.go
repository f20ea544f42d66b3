// Package nodeevents records a Kubernetes Event on a Node when the metrics
// server's scrapes of its kubelet start failing and when they recover, so
// that kubectl describe node shows why the node has no metrics:
//
//	Warning  MetricsScrapeFailed     metrics-server cannot scrape the kubelet (timeout, 2 times in a row), ...: <error>
//	Normal   MetricsScrapeRecovered  metrics-server scrapes the kubelet again after 5 failed scrapes
//
// A node gets one Warning per failing episode, after FailuresBefore failures
// in a row, and one Normal when it answers again after a Warning; all nodes
// together get at most PerMinute events a minute (the others are dropped,
// counted and logged once a minute). Events are written through client-go's
// events.k8s.io/v1 recorder, which kubectl describe reads as core v1 Events.
// The server keeps working when it may not write events: that is logged
// once.
//
// It knows nothing about how nodes are scraped: the scraper calls it as a
// scraper.NodeObserver.
package nodeevents

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
)

// Event reasons.
const (
	ReasonFailed    = "MetricsScrapeFailed"
	ReasonRecovered = "MetricsScrapeRecovered"
)

// Config configures a Recorder. Zero values get the defaults noted.
type Config struct {
	// Client writes the events (events.k8s.io/v1 create and patch).
	Client kubernetes.Interface
	// FailuresBefore is how many failed scrapes in a row make a node's
	// Warning. Default 2: the server drops a node after two failed
	// requests in a row at the default --metric-max-staleness, so one
	// failure (a kubelet restart, one lost connection) hides nothing and
	// is not worth an event; two in a row mean the node leaves kubectl top
	// about now.
	FailuresBefore int
	// PerMinute caps the events of all nodes together in any minute
	// (fixed windows). Default 30: a zone outage of thousands of nodes
	// must not flood the kube-apiserver with events; those dropped are
	// counted and logged, and a node whose Warning was dropped gets it
	// with a later failure.
	PerMinute int
	// Component is the reporting controller. Default "metrics-server".
	Component string
	// Clock is the time source of the cap. Default the real clock.
	Clock clock.PassiveClock
}

// maxNote is below the API's 1 KiB limit of an event's note.
const maxNote = 1000

// Recorder writes node events; it is a scraper.NodeObserver. Its methods
// are safe for concurrent use and never block on the kube-apiserver.
type Recorder struct {
	cfg         Config
	broadcaster events.EventBroadcaster
	recorder    events.EventRecorder
	sink        *quietSink

	mu sync.Mutex
	// warned holds the nodes whose Warning was written and not yet
	// followed by a recovery.
	warned map[string]struct{}
	// window is the start of the cap's current minute, sent the events
	// sent in it, dropped those dropped in it.
	window        time.Time
	sent, dropped int
}

// New returns a Recorder; nothing is written until Start.
func New(cfg Config) *Recorder {
	if cfg.FailuresBefore <= 0 {
		cfg.FailuresBefore = 2
	}
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = 30
	}
	if cfg.Component == "" {
		cfg.Component = "metrics-server"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	sink := &quietSink{EventSink: &events.EventSinkImpl{Interface: cfg.Client.EventsV1()}}
	b := events.NewBroadcaster(sink)
	return &Recorder{cfg: cfg, broadcaster: b, recorder: b.NewRecorder(scheme.Scheme, cfg.Component), sink: sink,
		warned: map[string]struct{}{}}
}

// Start writes events until ctx is done.
func (r *Recorder) Start(ctx context.Context) error {
	if err := r.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("starting the node event recorder: %w", err)
	}
	go func() {
		<-ctx.Done()
		r.broadcaster.Shutdown()
	}()
	return nil
}

// NodeFailed writes the node's Warning once it has failed FailuresBefore
// times in a row, unless it has one for this episode or the cap is
// reached (then a later failure tries again).
func (r *Recorder) NodeFailed(node *corev1.Node, failures int, reason string, err error) {
	if failures < r.cfg.FailuresBefore {
		return
	}
	r.mu.Lock()
	_, done := r.warned[node.Name]
	send := !done && r.admitLocked()
	if send {
		r.warned[node.Name] = struct{}{}
	}
	r.mu.Unlock()
	if !send {
		return
	}
	text := "unknown error"
	if err != nil {
		text = err.Error()
	}
	note := excerpt.Clip(fmt.Sprintf("metrics-server cannot scrape the kubelet (%s, %d times in a row), so the node and its pods have no metrics: %s", reason, failures, text), maxNote)
	// The action names the cause: client-go makes one event of those
	// alike but for their note (a series with a count), so a node
	// failing again for the same cause within minutes counts up, and one
	// failing for a new cause gets an event that says so.
	r.recorder.Eventf(node, nil, corev1.EventTypeWarning, ReasonFailed, "Scrape/"+reason, "%s", note)
}

// NodeRecovered writes the node's Normal event when it had a Warning.
// A recovery the cap drops is not retried: the node is fine.
func (r *Recorder) NodeRecovered(node *corev1.Node, failures int) {
	r.mu.Lock()
	_, warned := r.warned[node.Name]
	delete(r.warned, node.Name)
	send := warned && r.admitLocked()
	r.mu.Unlock()
	if send {
		r.recorder.Eventf(node, nil, corev1.EventTypeNormal, ReasonRecovered, "Scrape",
			"metrics-server scrapes the kubelet again after %d failed scrapes", failures)
	}
}

// Forget drops what the recorder holds of a deleted node.
func (r *Recorder) Forget(node string) {
	r.mu.Lock()
	delete(r.warned, node)
	r.mu.Unlock()
}

// admitLocked takes one event from the current minute's cap; r.mu held.
// The first event dropped in a minute is logged, and the count of those
// dropped in the last minute when the next minute admits one.
func (r *Recorder) admitLocked() bool {
	now := r.cfg.Clock.Now()
	if now.Sub(r.window) >= time.Minute {
		if r.dropped > 0 {
			klog.InfoS("Node events were dropped by the cap", "dropped", r.dropped, "perMinute", r.cfg.PerMinute)
		}
		r.window, r.sent, r.dropped = now, 0, 0
	}
	if r.sent < r.cfg.PerMinute {
		r.sent++
		return true
	}
	if r.dropped == 0 {
		klog.V(2).InfoS("Node event cap reached; dropping node events until the next minute", "perMinute", r.cfg.PerMinute)
	}
	r.dropped++
	return false
}

// quietSink writes events and, when the server may not (403), logs that
// once and drops them silently: client-go's broadcaster would log every
// refused event with its whole content. Events are retried as they come:
// a permission granted later takes effect without a restart.
type quietSink struct {
	events.EventSink
	denied atomic.Bool
}

func (s *quietSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	return s.check(s.EventSink.Create(ctx, e))
}

func (s *quietSink) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	return s.check(s.EventSink.Update(ctx, e))
}

func (s *quietSink) Patch(ctx context.Context, e *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	return s.check(s.EventSink.Patch(ctx, e, data))
}

// check turns a 403 into no error and no event, which the broadcaster
// neither logs nor retries.
func (s *quietSink) check(e *eventsv1.Event, err error) (*eventsv1.Event, error) {
	if !apierrors.IsForbidden(err) {
		return e, err
	}
	if !s.denied.Swap(true) {
		klog.ErrorS(err, "Cannot write Node events; scraping goes on without them. Grant create and patch on events.k8s.io events in namespace default (a Role there, as the manifests ship) to the server's ServiceAccount")
	}
	return nil, nil
}
