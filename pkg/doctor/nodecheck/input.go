package nodecheck

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/kubeletflags"
)

// Defaults of Input's limits.
const (
	DefaultMaxNodes    = 1000
	DefaultParallel    = 16
	DefaultNodeTimeout = 5 * time.Second
	DefaultTimeout     = 90 * time.Second
	DefaultListUpTo    = 20
	DefaultSkewWarn    = 30 * time.Second
)

// DefaultServiceAccount is the server's ServiceAccount in every manifest
// of ours and upstream's.
var DefaultServiceAccount = types.NamespacedName{Namespace: "kube-system", Name: "metrics-server"}

// Resolver resolves a node's host name; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Input is what Run needs. Client and Rest are required; every other
// zero field takes its default.
type Input struct {
	// Client lists nodes, requests the ServiceAccount's token, reads the
	// cluster CA and reviews access, with the operator's credentials.
	Client kubernetes.Interface
	// Rest is the operator's client configuration. Its credentials are
	// used for the kubelets only when a token of the server's
	// ServiceAccount cannot be had; its CA is the cluster CA when the
	// ConfigMap kube-root-ca.crt cannot be read.
	Rest *rest.Config
	// ServerArgs are the server container's command and args, from its
	// Deployment; they are parsed with the server's own kubelet flags
	// (unknown flags are ignored). Nil means the server's defaults.
	ServerArgs []string
	// ServiceAccount is the server's; empty means DefaultServiceAccount.
	ServiceAccount types.NamespacedName
	// KubeletCA is the PEM of the CA that signs the kubelets' serving
	// certificates. When nil, KubeletCAFile is read; when that is empty
	// too, the CA the server itself uses is taken where this machine can
	// read it (see trust.go).
	KubeletCA     []byte
	KubeletCAFile string
	// MaxNodes bounds how many nodes are checked; beyond it an even
	// sample by name is. Default DefaultMaxNodes.
	MaxNodes int
	// Parallel is how many nodes are checked at once. Default
	// DefaultParallel.
	Parallel int
	// NodeTimeout bounds the checks of one node (resolve, connect, TLS and
	// both endpoints). Default DefaultNodeTimeout.
	NodeTimeout time.Duration
	// Timeout bounds the whole run on top of ctx; nodes not checked by
	// then are reported as such. Default DefaultTimeout.
	Timeout time.Duration
	// Detail reports every node's every finding, ok ones included. Without
	// it, findings that are not ok are listed node by node when at most
	// ListUpTo nodes are checked, and otherwise, like ok findings always
	// are, folded into one finding per check and cause.
	Detail   bool
	ListUpTo int
	// SkewWarn is the clock difference above which a node is warned
	// about. Default DefaultSkewWarn.
	SkewWarn time.Duration
	// Clock is the local clock; nil is the real one.
	Clock clock.PassiveClock
	// Resolver resolves host names; nil is net.DefaultResolver.
	Resolver Resolver
}

// AddFlags adds the flags of the node checks to fs, writing into in.
func (in *Input) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&in.MaxNodes, "max-nodes", DefaultMaxNodes, "Check at most this many nodes; beyond it, an even sample by name.")
	fs.IntVar(&in.Parallel, "node-parallelism", DefaultParallel, "How many nodes are checked at once.")
	fs.DurationVar(&in.NodeTimeout, "node-timeout", DefaultNodeTimeout, "Time limit of the checks of one node.")
	fs.StringVar(&in.KubeletCAFile, "kubelet-certificate-authority", "", "PEM file of the CA that signs the kubelets' serving certificates (the server's --kubelet-certificate-authority); default: the CA the server uses, where this machine can read it.")
	fs.BoolVar(&in.Detail, "all-node-findings", false, "Report every node's every finding, ok ones included, instead of one finding per check and cause.")
	fs.Var(argsValue{&in.ServerArgs}, "server-args", "The server's arguments, for a server that does not run from a Deployment (or to check other ones than its Deployment's), such as \"--kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port\"; default the Deployment's.")
}

// withDefaults returns in with its zero limits defaulted.
func (in Input) withDefaults() Input {
	if in.MaxNodes <= 0 {
		in.MaxNodes = DefaultMaxNodes
	}
	if in.Parallel <= 0 {
		in.Parallel = DefaultParallel
	}
	if in.NodeTimeout <= 0 {
		in.NodeTimeout = DefaultNodeTimeout
	}
	if in.Timeout <= 0 {
		in.Timeout = DefaultTimeout
	}
	if in.ListUpTo <= 0 {
		in.ListUpTo = DefaultListUpTo
	}
	if in.SkewWarn <= 0 {
		in.SkewWarn = DefaultSkewWarn
	}
	if in.ServiceAccount.Name == "" {
		in.ServiceAccount = DefaultServiceAccount
	}
	if in.ServiceAccount.Namespace == "" {
		in.ServiceAccount.Namespace = DefaultServiceAccount.Namespace
	}
	if in.Clock == nil {
		in.Clock = clock.RealClock{}
	}
	return in
}

// serverKubeletOptions reads the server's kubelet flags from its args with
// the doctor's one reader of the server's args (doctor.ParseServerArgs,
// the server's own kubelet flag definitions and defaults), so the address,
// port, TLS and endpoint choices below are the server's. The error lists
// every problem the server itself would refuse to start with; the options
// returned then are the defaults when the args do not parse, else the args
// as parsed.
func serverKubeletOptions(args []string) (*kubeletflags.Options, error) {
	f, err := doctor.ParseServerArgs(args)
	if err != nil {
		return f.Kubelet, err
	}
	if errs := f.Kubelet.Validate(); len(errs) > 0 {
		return f.Kubelet, fmt.Errorf("the server's kubelet flags are refused: %v", errs)
	}
	return f.Kubelet, nil
}
