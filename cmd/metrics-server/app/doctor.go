package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/doctor/nodecheck"
)

// Exit statuses of metrics-server doctor.
const (
	doctorExitFailed = 1 // a check failed
	doctorExitUsage  = 2 // bad flags or arguments, or an unusable kubeconfig
)

// doctorOptions are the flags of metrics-server doctor.
type doctorOptions struct {
	kubeconfig, context string
	output              string
	namespace, service  string
	serviceAccount      string
	serviceAccountSet   bool
	serviceSet          bool
	apiServices         []string
	timeout             time.Duration
	// nodes are the per-node checks' flags; run sets their clients.
	// skipNodes leaves the per-node checks out.
	nodes     nodecheck.Input
	skipNodes bool
}

// newDoctorCommand returns `metrics-server doctor`: it checks, with the
// operator's kubeconfig, the chain from the kube-apiserver to the kubelets
// and prints what is wrong and the fix, as a table or JSON, to out. Its
// error is an *ExitError: status 1 when a check failed, 2 on a usage error.
func newDoctorCommand(out io.Writer) *cobra.Command {
	o := doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check why the metrics API does not work, and say how to fix it",
		Long: "doctor walks the chain kubectl top and the HorizontalPodAutoscaler depend on, with your kubeconfig:\n" +
			"the APIServices v1 and v1beta1.metrics.k8s.io (their Available condition decoded into a cause),\n" +
			"the aggregation layer's request-header authentication, the server's RBAC by SubjectAccessReview, and\n" +
			"each node's kubelet as the server would scrape it (address, TLS, authorization, endpoints, clock).\n" +
			"It prints one row per check with the fix, and exits 0 when nothing failed (warnings allowed),\n" +
			"1 when a check failed, 2 on a usage error.",
		SilenceUsage: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &ExitError{Code: doctorExitUsage, Err: fmt.Errorf("unexpected arguments %q: doctor takes only flags", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.serviceAccountSet = cmd.Flags().Changed("service-account")
			o.serviceSet = cmd.Flags().Changed("service") || cmd.Flags().Changed("namespace")
			return o.run(cmd.Context(), out)
		},
	}
	setToolHelp(cmd, doctorExitUsage)
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig to use; default $KUBECONFIG or ~/.kube/config.")
	fs.StringVar(&o.context, "context", "", "The kubeconfig context to use; default its current context.")
	fs.StringVarP(&o.output, "output", "o", "table", "Output format: table (for people) or json (for machines).")
	fs.StringVar(&o.namespace, "namespace", "kube-system", "Namespace of metrics-server's Service and Deployment; default the one v1beta1.metrics.k8s.io routes to, else this.")
	fs.StringVar(&o.service, "service", "metrics-server", "Name of metrics-server's Service, whose selector finds the Deployment; default the one v1beta1.metrics.k8s.io routes to, else this.")
	fs.StringVar(&o.serviceAccount, "service-account", "kube-system/metrics-server", "namespace/name of the server's ServiceAccount, whose RBAC is checked; default the Deployment's, else this.")
	fs.StringSliceVar(&o.apiServices, "apiservices", doctor.MetricsAPIServices(), "The APIServices to check.")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "Time limit of the whole run.")
	fs.BoolVar(&o.skipNodes, "skip-nodes", false, "Check the cluster-level chain only, not the nodes' kubelets.")
	o.nodes.AddFlags(fs)
	return cmd
}

// run checks the flags, connects and runs the doctor.
func (o *doctorOptions) run(ctx context.Context, out io.Writer) error {
	if o.output != "table" && o.output != "json" {
		return &ExitError{Code: doctorExitUsage, Err: fmt.Errorf("--output=%q: use table or json", o.output)}
	}
	if o.timeout <= 0 {
		return &ExitError{Code: doctorExitUsage, Err: fmt.Errorf("--timeout=%v: give a positive duration, such as 2m", o.timeout)}
	}
	if ns, name, ok := strings.Cut(o.serviceAccount, "/"); !ok || ns == "" || name == "" {
		return &ExitError{Code: doctorExitUsage, Err: fmt.Errorf("--service-account=%q: give namespace/name, such as kube-system/metrics-server", o.serviceAccount)}
	}
	cfg, err := o.restConfig()
	if err != nil {
		return &ExitError{Code: doctorExitUsage, Err: err}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return &ExitError{Code: doctorExitUsage, Err: fmt.Errorf("building a client from the kubeconfig: %w", err)}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return &ExitError{Code: doctorExitUsage, Err: fmt.Errorf("building a client from the kubeconfig: %w", err)}
	}
	o.nodes.Client, o.nodes.Rest = client, cfg
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	findings := doctor.Run(ctx, o.config(client, dyn))
	return o.report(out, findings)
}

// config is the doctor's run for these flags and clients; o.nodes has its
// clients set.
func (o *doctorOptions) config(client kubernetes.Interface, dyn dynamic.Interface) doctor.Config {
	c := doctor.Config{
		Client: client, Dynamic: dyn,
		Namespace: o.namespace, Service: o.service, ServiceSet: o.serviceSet,
		ServiceAccount: o.serviceAccount, ServiceAccountSet: o.serviceAccountSet,
		ServerArgs:   o.nodes.ServerArgs,
		APIServices:  o.apiServices,
		CheckTimeout: min(30*time.Second, o.timeout/3),
	}
	if !o.skipNodes {
		c.Nodes = nodecheck.NewChecker(o.nodes)
	}
	return c
}

// report prints the findings and turns a failure into exit status 1.
func (o *doctorOptions) report(out io.Writer, findings []doctor.Finding) error {
	var err error
	if o.output == "json" {
		err = doctor.WriteJSON(out, findings)
	} else {
		err = doctor.WriteTable(out, findings)
	}
	if err != nil {
		return fmt.Errorf("writing the findings: %w", err)
	}
	if doctor.Failed(findings) {
		return &ExitError{Code: doctorExitFailed}
	}
	return nil
}

// restConfig loads the operator's kubeconfig (see loadKubeconfig) with
// the doctor's limits: requests of 30 s at most, 50 a second.
func (o *doctorOptions) restConfig() (*rest.Config, error) {
	cfg, err := loadKubeconfig(o.kubeconfig, o.context, "metrics-server-doctor")
	if err != nil {
		return nil, err
	}
	cfg.Timeout = min(30*time.Second, o.timeout)
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}
