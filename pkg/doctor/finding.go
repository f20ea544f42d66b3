// Package doctor diagnoses why the metrics API does not work in a cluster:
// the aggregation layer, the APIServices that route metrics.k8s.io to our
// server, and our server's RBAC. Each check returns Findings that name what
// was checked, what is wrong and the one thing to do about it.
//
// It reads the cluster through a client-go clientset with the operator's
// credentials and knows nothing of how findings are printed; per-node checks
// live in package nodecheck.
package doctor

// Status is the verdict of one finding.
type Status string

const (
	// StatusOK means the checked thing works.
	StatusOK Status = "ok"
	// StatusWarn means it works now, or could not be checked, but something
	// deserves attention; a warning alone does not fail the doctor.
	StatusWarn Status = "warn"
	// StatusFail means it is broken: the metrics API (or part of it) cannot
	// work until the Fix is applied.
	StatusFail Status = "fail"
)

// Finding is the result of one check on one target. Message and Fix are
// written for an operator: Message names the input (object, node, flag) and
// says what is wrong or that it is fine; Fix is the one thing to do, with the
// exact flag or command, and is empty when there is nothing to do.
type Finding struct {
	// Check is a short id of the check, e.g. "aggregation-layer",
	// "apiservice", "rbac", "node-tls".
	Check string `json:"check"`
	// Target is what was checked: "v1beta1.metrics.k8s.io", "node/worker-3", ...
	Target string `json:"target"`
	// Status is the verdict.
	Status Status `json:"status"`
	// Message says what is wrong (or what is fine), in words, naming the input.
	Message string `json:"message"`
	// Fix is the one thing to do, with the exact flag or command.
	Fix string `json:"fix,omitempty"`
	// Detail is the raw error or condition text the verdict was drawn from.
	Detail string `json:"detail,omitempty"`
}
