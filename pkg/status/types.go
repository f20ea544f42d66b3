package status

import "time"

// Node is one node's scrape status on the wire.
type Node struct {
	Node string `json:"node"`
	// Address is the kubelet's host:port the server uses; empty when the
	// node has no address of the types --kubelet-preferred-address-types
	// names.
	Address string `json:"address,omitempty"`
	// Endpoint is the kubelet path the server asks (/metrics/resource,
	// /stats/summary or a node's annotated path).
	Endpoint string `json:"endpoint,omitempty"`
	// Lane is "slow" for a node whose last request took half the request
	// timeout or more, else "fast". Every node is scraped the same way,
	// with a request of its own each cycle; the name stays from when slow
	// nodes had request slots of their own, and the field now only tells
	// that a node answers near its timeout.
	Lane string `json:"lane"`
	// LastAttempt is when the last request started; LastSuccess when the
	// last good answer arrived; LastFailure when the last failed request
	// ended. Absent: never.
	LastAttempt *time.Time `json:"lastAttempt,omitempty"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastFailure *time.Time `json:"lastFailure,omitempty"`
	// DurationSeconds is how long the last request took.
	DurationSeconds float64 `json:"durationSeconds"`
	// ConsecutiveFailures counts the failed requests since the last
	// success.
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// Reason classifies the failure while the node is failing: no_address,
	// connection, timeout, tls, http_status, redirect, too_large, decode,
	// no_decode_slot (the kubelet answered but no decode slot,
	// --kubelet-max-concurrency, came free before the request's
	// deadline), other.
	Reason string `json:"reason,omitempty"`
	// LastError is the last failure's text (at most MaxErrorBytes), kept
	// after a success: LastFailure says how old it is.
	LastError string `json:"lastError,omitempty"`
	// SkippedCycles counts the cycles in a row that started no request
	// to the node because its previous request was still in flight (a
	// request lasts at most the timeout, less than the resolution, so
	// this stays 0 unless the process is starved). Such cycles do not
	// count as failures.
	SkippedCycles int `json:"skippedCycles,omitempty"`
}

// Failing reports whether the node's last request that ran its course
// failed.
func (n *Node) Failing() bool { return n.Reason != "" }

// NodeList is the answer of /status/nodes.
type NodeList struct {
	// Total is the number of nodes the last scrape cycle listed, Failing
	// how many of them are failing, whatever the filter and limit.
	Total   int `json:"total"`
	Failing int `json:"failing"`
	// Truncated: more nodes matched than the limit; Nodes holds the first
	// ones (failing nodes come first).
	Truncated bool `json:"truncated,omitempty"`
	// Nodes are the failing nodes, most failures in a row first, then the
	// others, each group by name.
	Nodes []Node `json:"nodes"`
}

// Pod reason codes besides those of the store (Served, NotReported,
// NoContainers, OnePoint, MissingValues, ImplausibleRate, ZeroUsage).
const (
	// PodNotRunning: the server's cache of Running pods does not hold the
	// pod: it is not Running (Pending, Succeeded, Failed), does not
	// exist, or began running a moment ago.
	PodNotRunning = "NotRunning"
)

// Pod is the answer of /status/pods/<namespace>/<name>.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Served: kubectl top and the HPA get the pod's metrics.
	Served bool `json:"served"`
	// Reason is a code (Served, NotRunning, NotReported, NoContainers,
	// OnePoint, MissingValues, ImplausibleRate, ZeroUsage) and Message
	// the same in words.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Node is the node whose kubelet reports the pod, Container the one
	// keeping it from being served, when the reason is theirs.
	Node      string `json:"node,omitempty"`
	Container string `json:"container,omitempty"`
	// NodeStatus is Node's scrape status when the pod is not served.
	NodeStatus *Node `json:"nodeStatus,omitempty"`
}

// Error is the body of an answer other than 200.
type Error struct {
	Error string `json:"error"`
}
