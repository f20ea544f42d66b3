package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
	"github.com/kubemetrics/metrics-server/pkg/status"
)

// Exit statuses of metrics-server status, as the doctor's.
const (
	statusExitFailed = 1 // the server could not be asked or refused
	statusExitUsage  = 2 // bad flags or arguments
)

// statusOptions are the flags of metrics-server status.
type statusOptions struct {
	kubeconfig, context string
	// server is https://host:port of one metrics-server; empty: a
	// port-forward to a ready pod behind the Service.
	server, tlsServerName string
	caFile                string
	insecure              bool
	namespace, service    string
	apiService            string
	failing               bool
	limit                 int
	output                string
	timeout               time.Duration
}

// newStatusCommand returns `metrics-server status`: it asks a running
// metrics-server why a node or pod has no metrics and prints the answer to
// out, as a table or JSON.
func newStatusCommand(out io.Writer) *cobra.Command {
	o := statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [NODE | pod NAMESPACE/NAME]",
		Short: "Show why a node or pod has no metrics: each node's last scrapes, or a pod's reason",
		Long: "status asks a running metrics-server, with your kubeconfig's credentials, what it knows:\n" +
			"  status                 every node's last scrape (failing nodes first): address, endpoint, last\n" +
			"                         success, duration, failures in a row, the last error, whether it answers\n" +
			"                         near the timeout (LANE slow)\n" +
			"  status NODE            one node, with its whole last error\n" +
			"  status pod NS/NAME     whether the pod is served, and why not (not Running, not yet two\n" +
			"                         points, a container without values, dropped for zero usage, not reported)\n" +
			"It reaches the server through a port-forward to a ready pod behind --service (or at --server),\n" +
			"verifies it with the caBundle of --apiservice (or --certificate-authority), and needs get on the\n" +
			"non-resource URLs /status/* (ClusterRole system:metrics-server-status-reader of the kustomize\n" +
			"component components/status-reader; the chart makes system:<fullname>-status-reader only with\n" +
			"rbac.statusReader=true).",
		SilenceUsage: true,
		Args: func(_ *cobra.Command, args []string) error {
			if _, _, err := statusPath(args, false, 1); err != nil {
				return &ExitError{Code: statusExitUsage, Err: err}
			}
			return nil
		},
		// Errors are printed plainly (app.Run), not as log lines.
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return &ExitError{Code: statusExitUsage, Err: err}
			}
			// An unreadable kubeconfig or unknown context is a usage
			// error, as in doctor.
			if _, err := o.restConfig(); err != nil {
				return &ExitError{Code: statusExitUsage, Err: err}
			}
			if err := o.run(cmd.Context(), args, out); err != nil {
				return &ExitError{Code: statusExitFailed, Err: err}
			}
			return nil
		},
	}
	setToolHelp(cmd, statusExitUsage)
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig to use; default $KUBECONFIG or ~/.kube/config. Its user's token or client certificate is presented to the server.")
	fs.StringVar(&o.context, "context", "", "The kubeconfig context to use; default its current context.")
	fs.StringVar(&o.server, "server", "", "https://host:port of one metrics-server to ask directly, instead of a port-forward to a pod behind --service.")
	fs.StringVar(&o.tlsServerName, "tls-server-name", "", "Name to verify the server's certificate for; default <service>.<namespace>.svc through a port-forward, the --server host otherwise.")
	fs.StringVar(&o.caFile, "certificate-authority", "", "PEM file of the CA that signed the server's certificate; default the caBundle of --apiservice.")
	fs.BoolVar(&o.insecure, "insecure-skip-tls-verify", false, "Do not verify the server's certificate (test clusters whose APIService has no caBundle); your credentials are then not sent (the request is anonymous, which the server refuses unless anonymous requests may read /status).")
	fs.StringVar(&o.namespace, "namespace", "kube-system", "Namespace of metrics-server's Service.")
	fs.StringVar(&o.service, "service", "metrics-server", "Name of metrics-server's Service; a ready pod it selects is asked.")
	fs.StringVar(&o.apiService, "apiservice", "v1beta1.metrics.k8s.io", "The APIService whose spec.caBundle verifies the server.")
	fs.BoolVar(&o.failing, "failing", false, "List only the nodes whose scrapes fail.")
	fs.IntVar(&o.limit, "limit", 500, "At most this many nodes in a list (failing nodes come first); the server allows up to 5000.")
	fs.StringVarP(&o.output, "output", "o", "table", "Output format: table (for people) or json (the server's answer).")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "Time limit of the whole command.")
	return cmd
}

// statusPath returns the server path args ask for and whether it is a
// pod's; failing and limit apply to a list of nodes.
func statusPath(args []string, failing bool, limit int) (path string, pod bool, err error) {
	switch {
	case len(args) == 0:
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if failing {
			q.Set("failing", "true")
		}
		return status.Prefix + "nodes?" + q.Encode(), false, nil
	case len(args) == 1 && args[0] != "pod":
		return status.Prefix + "nodes/" + url.PathEscape(args[0]), false, nil
	case len(args) == 2 && args[0] == "pod":
		ns, name, ok := strings.Cut(args[1], "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return "", false, fmt.Errorf("pod %q: give NAMESPACE/NAME, such as kube-system/coredns-7db6d8ff4d-x2vzq", args[1])
		}
		return status.Prefix + "pods/" + url.PathEscape(ns) + "/" + url.PathEscape(name), true, nil
	}
	return "", false, fmt.Errorf("unexpected arguments %q: give nothing (every node), a node's name, or pod NAMESPACE/NAME", args)
}

// validate checks the flags alone.
func (o *statusOptions) validate() error {
	switch {
	case o.output != "table" && o.output != "json":
		return fmt.Errorf("--output=%q: use table or json", o.output)
	case o.limit <= 0 || o.limit > 5000:
		return fmt.Errorf("--limit=%d: give 1 to 5000", o.limit)
	case o.insecure && o.caFile != "":
		return errors.New("--insecure-skip-tls-verify and --certificate-authority contradict each other: give one")
	case o.timeout <= 0:
		return fmt.Errorf("--timeout=%v: give a positive duration, such as 30s", o.timeout)
	}
	return nil
}

// run asks the server what args ask and prints the answer.
func (o *statusOptions) run(ctx context.Context, args []string, out io.Writer) error {
	path, isPod, err := statusPath(args, o.failing, o.limit)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building a client from the kubeconfig: %w", err)
	}
	ca, err := o.serverCA(ctx, cfg)
	if err != nil {
		return err
	}
	base, serverName, stop, err := o.reach(ctx, cfg, kube)
	if err != nil {
		return err
	}
	defer stop()
	c, err := statusClient(cfg, ca, o.insecure, serverName)
	if err != nil {
		return err
	}
	ask := func(path string, into any) error { return getStatus(ctx, c, base, path, o.insecure, into) }
	if isPod {
		return o.pod(ctx, kube, ask, args[1], path, out)
	}
	if len(args) == 1 {
		var n status.Node
		if err := ask(path, &n); err != nil {
			return err
		}
		return o.print(out, &n, func(w io.Writer) { writeNode(w, &n) })
	}
	var list status.NodeList
	if err := ask(path, &list); err != nil {
		return err
	}
	return o.print(out, &list, func(w io.Writer) { writeNodeList(w, &list, o.failing) })
}

// pod asks the server about a pod, after asking the kube-apiserver whether
// it exists and runs (the server caches Running pods only); when no node
// reports it, it adds the scrape status of the node it is bound to. A pod
// that does not exist is an error.
func (o *statusOptions) pod(ctx context.Context, kube kubernetes.Interface, ask func(string, any) error, key, path string, out io.Writer) error {
	ns, name, _ := strings.Cut(key, "/")
	var answer status.Pod
	p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Not a state of a pod: an error, exit status 1.
		return fmt.Errorf("pod %s/%s does not exist (kubectl get pod -n %s %s)", ns, name, ns, name)
	case err == nil && p.Status.Phase != corev1.PodRunning:
		answer = status.Pod{Namespace: ns, Name: name, Reason: status.PodNotRunning, Node: p.Spec.NodeName,
			Message: fmt.Sprintf("the pod is %s, not Running; only Running pods have metrics", p.Status.Phase)}
		return o.print(out, &answer, func(w io.Writer) { writePod(w, &answer) })
	case err != nil:
		// May not read pods: the server's answer has to do.
		p = nil
	}
	if err := ask(path, &answer); err != nil {
		return err
	}
	if p != nil && answer.Node == "" && answer.NodeStatus == nil && p.Spec.NodeName != "" {
		answer.Node = p.Spec.NodeName
		var n status.Node
		if err := ask(status.Prefix+"nodes/"+url.PathEscape(p.Spec.NodeName), &n); err == nil {
			answer.NodeStatus = &n
		} else {
			answer.Message += fmt.Sprintf("; the pod's node %s: %v", p.Spec.NodeName, err)
		}
	}
	return o.print(out, &answer, func(w io.Writer) { writePod(w, &answer) })
}

// print writes v as JSON or through table.
func (o *statusOptions) print(out io.Writer, v any, table func(io.Writer)) error {
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	table(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := out.Write(trimLineEnds(b.Bytes()))
	return err
}

// restConfig loads the operator's kubeconfig (see loadKubeconfig); a
// request may take the whole --timeout.
func (o *statusOptions) restConfig() (*rest.Config, error) {
	cfg, err := loadKubeconfig(o.kubeconfig, o.context, "metrics-server-status")
	if err != nil {
		return nil, err
	}
	cfg.Timeout = o.timeout
	return cfg, nil
}

// serverCA returns the PEM CA that verifies the server: --certificate-authority,
// else the APIService's caBundle; nil with --insecure-skip-tls-verify.
func (o *statusOptions) serverCA(ctx context.Context, cfg *rest.Config) ([]byte, error) {
	switch {
	case o.insecure:
		return nil, nil
	case o.caFile != "":
		ca, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading --certificate-authority: %w", err)
		}
		return ca, nil
	}
	agg, err := aggregator.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building an APIService client: %w", err)
	}
	svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, o.apiService, metav1.GetOptions{})
	var apiErr apierrors.APIStatus
	if err != nil && !errors.As(err, &apiErr) {
		// No answer at all: a CA flag would not help.
		return nil, fmt.Errorf("the kube-apiserver at %s did not answer (check the kubeconfig's server and the network to it): %w", cfg.Host, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading APIService %s for the CA that verifies the server (or pass --certificate-authority): %w", o.apiService, err)
	}
	if len(svc.Spec.CABundle) == 0 {
		return nil, fmt.Errorf("APIService %s has no caBundle (insecureSkipTLSVerify: %v), so the server cannot be verified: pass --certificate-authority with its CA, or --insecure-skip-tls-verify on a test cluster",
			o.apiService, svc.Spec.InsecureSkipTLSVerify)
	}
	return svc.Spec.CABundle, nil
}

// reach returns the server's base URL and the name to verify its
// certificate for, and stop to call when done: --server as given, else a
// port-forward to a ready pod behind the Service.
func (o *statusOptions) reach(ctx context.Context, cfg *rest.Config, kube kubernetes.Interface) (base, serverName string, stop func(), err error) {
	if o.server != "" {
		u, err := url.Parse(o.server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return "", "", nil, fmt.Errorf("--server=%q: give https://host:port", o.server)
		}
		return strings.TrimSuffix(o.server, "/"), o.tlsServerName, func() {}, nil
	}
	base, stop, err = portForward(ctx, cfg, kube, o.namespace, o.service)
	if err != nil {
		return "", "", nil, err
	}
	serverName = o.tlsServerName
	if serverName == "" {
		serverName = o.service + "." + o.namespace + ".svc"
	}
	return base, serverName, stop, nil
}

// statusClient is an HTTP client for the server. It verifies the server
// with ca for serverName and only then presents the kubeconfig's
// credentials (token, client certificate, exec plugin): crypto/tls checks
// the server's certificate before the client sends its own, and the
// request with the token goes only over a verified connection. With
// insecure (--insecure-skip-tls-verify) nothing is verified, so nothing of
// the operator's is sent: the request is anonymous. Redirects are never
// followed, so credentials go to the server asked only.
func statusClient(cfg *rest.Config, ca []byte, insecure bool, serverName string) (*http.Client, error) {
	var c *rest.Config
	switch {
	case insecure:
		c = rest.AnonymousClientConfig(cfg)
		c.TLSClientConfig = rest.TLSClientConfig{Insecure: true, ServerName: serverName}
	case len(ca) == 0:
		return nil, errors.New("no CA to verify the server with, so your credentials are not sent: pass --certificate-authority")
	default:
		c = rest.CopyConfig(cfg)
		c.TLSClientConfig.CAFile, c.TLSClientConfig.CAData = "", ca
		c.TLSClientConfig.Insecure = false
		c.TLSClientConfig.ServerName = serverName
	}
	// A transport of the caller's would ignore the TLS settings above.
	c.Transport = nil
	hc, err := rest.HTTPClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("building the client for the server: %w", err)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc, nil
}

// getStatus GETs base+path into v and turns the server's refusals into
// what to do; anonymous says the request carried no credentials because
// the server was not verified.
func getStatus(ctx context.Context, c *http.Client, base, path string, anonymous bool, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return fmt.Errorf("asking %s: %w", base, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("asking metrics-server at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading metrics-server's answer to %s: %w", path, err)
	}
	refused := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("decoding metrics-server's answer to %s (is it a kubemetrics metrics-server?): %w", path, err)
		}
		return nil
	case refused && anonymous:
		return fmt.Errorf("metrics-server at %s refused an anonymous request (%d): with --insecure-skip-tls-verify its certificate is not verified, so your credentials are not sent to it (they would go to whoever answers there); pass --certificate-authority with the CA of its certificate, or drop --insecure-skip-tls-verify to verify it with the APIService's caBundle", base, resp.StatusCode)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("metrics-server at %s did not accept your credentials (401): use a kubeconfig with a token or a client certificate of the cluster's client CA", base)
	case http.StatusForbidden:
		return fmt.Errorf("metrics-server at %s refused you /status (403): bind the ClusterRole system:metrics-server-status-reader to your user, e.g. kubectl create clusterrolebinding status-reader --clusterrole=system:metrics-server-status-reader --user=$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}'): %s",
			base, snippetOf(body))
	}
	var e status.Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("metrics-server answered %d: %s", resp.StatusCode, e.Error)
	}
	return fmt.Errorf("metrics-server at %s answered %d to %s (is it a kubemetrics metrics-server of this version?): %s", base, resp.StatusCode, path, snippetOf(body))
}

// snippetOf is the start of a body quoted in an error: one line of at
// most 300 bytes, cut on a rune.
func snippetOf(b []byte) string { return excerpt.OneLine(string(b), 300) }
