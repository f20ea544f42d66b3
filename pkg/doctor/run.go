package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// NodeChecker runs the per-node checks (package nodecheck) for the server
// found by FindServer. It must return by ctx's deadline.
type NodeChecker func(ctx context.Context, server Server) []Finding

// Config is one run of the doctor.
type Config struct {
	// Client and Dynamic reach the cluster with the operator's credentials.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Namespace and Service locate metrics-server's Service (and through
	// its selector, its Deployment). Unless ServiceSet, the Service the
	// first APIService routes to replaces them.
	Namespace, Service string
	ServiceSet         bool
	// ServiceAccount ("namespace/name") is the server's identity when its
	// Deployment is not found, or always when ServiceAccountSet.
	ServiceAccount    string
	ServiceAccountSet bool
	// ServerArgs, when not nil, replace the arguments of the server's
	// Deployment: for a server that runs outside the cluster.
	ServerArgs []string
	// APIServices to check; empty means MetricsAPIServices().
	APIServices []string
	// Nodes runs the per-node checks; nil skips them.
	Nodes NodeChecker
	// CheckTimeout bounds each cluster-level check; 0 means 30 s.
	CheckTimeout time.Duration
	// Now is the clock certificates are checked against; nil means time.Now.
	Now func() time.Time
}

// Run runs every check in order (the kube-apiserver's reachability, the
// APIServices, the aggregation layer, the server's RBAC, the nodes) and returns their findings in that order.
// Each check is bounded by CheckTimeout and all by ctx; a check cut short
// reports what it could not check as a warning or failure of its own.
func Run(ctx context.Context, cfg Config) []Finding {
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	bounded := func(f func(ctx context.Context)) {
		cctx, cancel := context.WithTimeout(ctx, cfg.CheckTimeout)
		defer cancel()
		f(cctx)
	}
	var findings []Finding
	if f, ok := reachable(ctx, cfg); !ok {
		return []Finding{f}
	}
	var states []APIServiceState
	bounded(func(ctx context.Context) {
		var f []Finding
		f, states = CheckAPIServices(ctx, cfg.Dynamic, cfg.APIServices)
		findings = append(findings, f...)
	})
	if !cfg.ServiceSet {
		for _, st := range states {
			if ns, name, ok := strings.Cut(st.Service, "/"); ok {
				cfg.Namespace, cfg.Service = ns, name
				break
			}
		}
	}
	var server Server
	var findErr error
	bounded(func(ctx context.Context) {
		var err error
		server, err = FindServer(ctx, cfg.Client, cfg.Namespace, cfg.Service, cfg.ServiceAccount, cfg.ServiceAccountSet)
		findErr = err
		if err != nil {
			findings = append(findings, Finding{Check: "server", Target: fmt.Sprintf("service/%s/%s", cfg.Namespace, cfg.Service), Status: StatusWarn,
				Message: "cannot find metrics-server's Deployment, so its own flags were not checked and its service account is taken as " + cfg.ServiceAccount,
				Fix:     "run the doctor with a kubeconfig that may get services and list deployments in " + cfg.Namespace + ", or pass --service-account",
				Detail:  err.Error()})
		}
	})
	if cfg.ServerArgs != nil {
		server.Args = cfg.ServerArgs
	} else if server.Deployment == "" && findErr == nil {
		// Without the server's flags every later check assumes its
		// defaults, whose address types (host names first) differ from
		// the manifests': say so rather than fail nodes for it.
		findings = append(findings, Finding{Check: "server", Target: fmt.Sprintf("service/%s/%s", cfg.Namespace, cfg.Service), Status: StatusWarn,
			Message: "no Deployment runs metrics-server behind service " + cfg.Namespace + "/" + cfg.Service + " (it runs outside the cluster, or from another kind of object): the checks below assume its default flags, such as --kubelet-preferred-address-types=Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP",
			Fix:     `pass the flags it runs with: --server-args="--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname --kubelet-use-node-status-port ..."`})
	}
	bounded(func(ctx context.Context) {
		findings = append(findings, CheckAggregationLayer(ctx, cfg.Client, AggregationInput{ServerArgs: server.Args, APIServices: states, Now: cfg.Now()})...)
	})
	bounded(func(ctx context.Context) {
		findings = append(findings, CheckRBAC(ctx, cfg.Client, RBACInput{ServiceAccount: server.ServiceAccount, ServerArgs: server.Args})...)
	})
	if cfg.Nodes != nil {
		findings = append(findings, cfg.Nodes(ctx, server)...)
	}
	return findings
}

// reachable asks the kube-apiserver for its version, within
// CheckTimeout: when it does not answer, nothing else can be checked.
func reachable(ctx context.Context, cfg Config) (Finding, bool) {
	ctx, cancel := context.WithTimeout(ctx, cfg.CheckTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := cfg.Client.Discovery().ServerVersion()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return Finding{}, true
	}
	return Finding{Check: "kube-apiserver", Target: "kubeconfig", Status: StatusFail,
		Message: "cannot reach the kube-apiserver of the kubeconfig's current context, so nothing was checked",
		Fix:     "check the kubeconfig (--kubeconfig, --context, $KUBECONFIG) with kubectl version",
		Detail:  err.Error()}, false
}

// Failed reports whether any finding failed.
func Failed(findings []Finding) bool {
	for _, f := range findings {
		if f.Status == StatusFail {
			return true
		}
	}
	return false
}
