package status

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
	"github.com/kubemetrics/metrics-server/pkg/scraper"
	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// NodeSource gives the scraper's node statuses; *scraper.Scraper is one.
type NodeSource interface {
	NodeStatuses(failingOnly bool) []scraper.NodeStatus
	NodeStatus(name string) (scraper.NodeStatus, bool)
}

// PodSource says why a pod is or is not served; *storage.Store is one.
type PodSource interface {
	PodReason(namespace, name string) storage.PodReason
}

// Config is what a Handler reads.
type Config struct {
	Nodes NodeSource
	Pods  PodSource
	// Running reports whether the server's pod cache holds the pod as
	// Running (only those can be served).
	Running func(namespace, name string) (bool, error)
	// DefaultLimit and MaxLimit bound the nodes of one /status/nodes
	// answer: DefaultLimit without ?limit=, never more than MaxLimit.
	// Zero means 500 and 5,000.
	DefaultLimit, MaxLimit int
}

// Prefix is the path under which the handler serves.
const Prefix = "/status/"

// MaxErrorBytes bounds the error text of one node in an answer.
const MaxErrorBytes = 2048

// Handler serves Prefix. Authentication and authorization are the
// server's filters' job, not its own.
type Handler struct {
	cfg Config
}

// NewHandler returns a Handler reading cfg's sources.
func NewHandler(cfg Config) *Handler {
	if cfg.DefaultLimit <= 0 {
		cfg.DefaultLimit = 500
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 5000
	}
	cfg.DefaultLimit = min(cfg.DefaultLimit, cfg.MaxLimit)
	return &Handler{cfg: cfg}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "only GET is served under %s", Prefix)
		return
	}
	rest, _ := strings.CutPrefix(r.URL.Path, Prefix)
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "nodes":
		h.nodes(w, r)
	case len(parts) == 2 && parts[0] == "nodes" && parts[1] != "":
		h.node(w, parts[1])
	case len(parts) == 3 && parts[0] == "pods" && parts[1] != "" && parts[2] != "":
		h.pod(w, parts[1], parts[2])
	default:
		writeError(w, http.StatusNotFound, "no such status path %q: use %snodes, %snodes/<node> or %spods/<namespace>/<pod>", r.URL.Path, Prefix, Prefix, Prefix)
	}
}

func (h *Handler) nodes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	failingOnly := false
	if v := q.Get("failing"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "failing=%q: want true or false", v)
			return
		}
		failingOnly = b
	}
	limit := h.cfg.DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > h.cfg.MaxLimit {
			writeError(w, http.StatusBadRequest, "limit=%q: want a number from 1 to %d", v, h.cfg.MaxLimit)
			return
		}
		limit = n
	}
	all := h.cfg.Nodes.NodeStatuses(false)
	list := NodeList{Total: len(all)}
	matched := all[:0]
	for _, n := range all {
		failing := n.Reason != ""
		if failing {
			list.Failing++
		}
		if failing || !failingOnly {
			matched = append(matched, n)
		}
	}
	// Failing nodes first, longest failing first, so a limit keeps them.
	sort.Slice(matched, func(i, j int) bool {
		a, b := &matched[i], &matched[j]
		if (a.Reason != "") != (b.Reason != "") {
			return a.Reason != ""
		}
		if a.ConsecutiveFailures != b.ConsecutiveFailures {
			return a.ConsecutiveFailures > b.ConsecutiveFailures
		}
		return a.Node < b.Node
	})
	if len(matched) > limit {
		matched, list.Truncated = matched[:limit], true
	}
	list.Nodes = make([]Node, len(matched))
	for i := range matched {
		list.Nodes[i] = wireNode(&matched[i])
	}
	writeJSON(w, http.StatusOK, &list)
}

func (h *Handler) node(w http.ResponseWriter, name string) {
	n, ok := h.cfg.Nodes.NodeStatus(name)
	if !ok {
		writeError(w, http.StatusNotFound, "node %q is not scraped: the last scrape cycle did not list it (no such node, not selected by --node-selector, or created since)", name)
		return
	}
	out := wireNode(&n)
	writeJSON(w, http.StatusOK, &out)
}

func (h *Handler) pod(w http.ResponseWriter, namespace, name string) {
	out := Pod{Namespace: namespace, Name: name}
	running, err := h.cfg.Running(namespace, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading pod %s/%s from the pod cache: %v", namespace, name, err)
		return
	}
	if !running {
		out.Reason = PodNotRunning
		out.Message = "the server's cache of Running pods does not hold the pod: it is not Running (Pending, Succeeded or Failed), does not exist, or began running a moment ago; only Running pods are served"
		writeJSON(w, http.StatusOK, &out)
		return
	}
	r := h.cfg.Pods.PodReason(namespace, name)
	out.Served = r.Code == storage.PodServed
	out.Reason, out.Message, out.Node, out.Container = r.Code, r.Message, r.Node, r.Container
	if !out.Served && r.Node != "" {
		if n, ok := h.cfg.Nodes.NodeStatus(r.Node); ok {
			wn := wireNode(&n)
			out.NodeStatus = &wn
		}
	}
	writeJSON(w, http.StatusOK, &out)
}

// wireNode renders a scraper status for the wire.
func wireNode(n *scraper.NodeStatus) Node {
	out := Node{
		Node:                n.Node,
		Address:             n.Address,
		Endpoint:            n.Endpoint,
		Lane:                n.Lane(),
		LastAttempt:         timePtr(n.LastAttempt),
		LastSuccess:         timePtr(n.LastSuccess),
		LastFailure:         timePtr(n.LastFailure),
		DurationSeconds:     n.Duration.Seconds(),
		ConsecutiveFailures: n.ConsecutiveFailures,
		Reason:              n.Reason,
		SkippedCycles:       n.Skipped,
	}
	if n.LastError != nil {
		out.LastError = excerpt.Clip(n.LastError.Error(), MaxErrorBytes)
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, &Error{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		klog.V(4).InfoS("Writing a status answer failed", "err", err)
	}
}
