package nodecheck

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

// NewChecker returns the doctor's per-node check for in: Run, with the
// server's args and ServiceAccount taken from the server the doctor found
// (its Deployment), unless in gives them. It returns nil, no node checks,
// when in.Client is nil.
func NewChecker(in Input) doctor.NodeChecker {
	if in.Client == nil {
		return nil
	}
	return func(ctx context.Context, s doctor.Server) []doctor.Finding {
		run := in
		if run.ServerArgs == nil && s.Deployment != "" {
			run.ServerArgs = s.Args
		}
		if ns, name, ok := strings.Cut(s.ServiceAccount, "/"); ok && run.ServiceAccount.Name == "" {
			run.ServiceAccount = types.NamespacedName{Namespace: ns, Name: name}
		}
		return Run(ctx, run)
	}
}

// argsValue is a flag holding a server's args as one string, split at
// white space.
type argsValue struct{ args *[]string }

func (a argsValue) String() string { return strings.Join(*a.args, " ") }
func (a argsValue) Type() string   { return "string" }
func (a argsValue) Set(s string) error {
	*a.args = strings.Fields(s)
	return nil
}
