package nodecheck

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// listPage is how many nodes one list call returns.
const listPage = 500

// Run checks the kubelets of the cluster's nodes as the server described
// by in would scrape them and returns the findings: first those of the
// run (settings, credentials, the sample taken), then per check those of
// the nodes, failures first. It returns within in.Timeout (and ctx);
// nodes not checked by then are reported as such. in.Client and in.Rest
// must be set.
func Run(ctx context.Context, in Input) []doctor.Finding {
	in = in.withDefaults()
	if in.Resolver == nil {
		in.Resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, in.Timeout)
	defer cancel()
	logger := klog.FromContext(ctx)

	var out []doctor.Finding
	ko, err := serverKubeletOptions(in.ServerArgs)
	if err != nil {
		out = append(out, doctor.Finding{Check: CheckSettings, Target: "deployment-args", Status: doctor.StatusFail,
			Message: err.Error() + "; the server cannot start with them (the nodes are checked with those that parse and are valid, the defaults for the rest)",
			Fix:     "correct the flags in the server's Deployment (metrics-server --help lists them)"})
	}
	cfg, err := ko.Config(&rest.Config{})
	if err != nil {
		ko, _ = serverKubeletOptions(nil)
		if cfg, err = ko.Config(&rest.Config{}); err != nil {
			// The defaults are valid; only a programming error gets here.
			return append(out, doctor.Finding{Check: CheckSettings, Target: "deployment-args", Status: doctor.StatusFail, Message: err.Error()})
		}
	}
	nodes, err := listNodes(ctx, in, ko.NodeSelector)
	if err != nil {
		return append(out, doctor.Finding{Check: CheckNodes, Target: "nodes", Status: doctor.StatusFail,
			Message: fmt.Sprintf("cannot list the nodes: %v", err),
			Fix:     "run doctor with credentials that may list nodes (kubectl auth can-i list nodes)"})
	}
	if len(nodes) == 0 {
		msg := "the cluster has no nodes, so the server has nothing to scrape"
		if ko.NodeSelector != "" {
			msg = fmt.Sprintf("no node matches the server's --node-selector=%s, so it has nothing to scrape", ko.NodeSelector)
		}
		return append(out, doctor.Finding{Check: CheckNodes, Target: "nodes", Status: doctor.StatusWarn, Message: msg})
	}
	checked := sample(nodes, in.MaxNodes)
	if len(checked) < len(nodes) {
		out = append(out, doctor.Finding{Check: CheckNodes, Target: "nodes", Status: doctor.StatusOK,
			Message: fmt.Sprintf("checked %s of %s nodes, an even sample by name; raise --max-nodes to check more", count(len(checked)), count(len(nodes)))})
	}

	r := &runner{in: in, ko: ko, cfg: cfg, reviews: newReviews(in.Client)}
	var tf, cf []doctor.Finding
	r.trust, tf = findTrust(ctx, in, ko)
	if r.trust.verified() {
		r.creds, cf = findCreds(ctx, in, ko)
	} else {
		// No credential could be sent (see kubeletRest): none is minted.
		r.creds = creds{cfg: &rest.Config{}, who: "no credential"}
	}
	out = append(append(out, tf...), cf...)
	if err := r.buildHTTP(); err != nil {
		out = append(out, doctor.Finding{Check: CheckSettings, Target: "kubelet-client", Status: doctor.StatusFail,
			Message: fmt.Sprintf("cannot build the kubelet client: %v", err)})
		r.http, r.why = nil, "the kubelet client could not be built"
	}
	if r.http != nil {
		defer r.http.CloseIdleConnections()
	}
	logger.V(2).Info("Checking nodes", "nodes", len(checked), "of", len(nodes), "parallel", in.Parallel, "credentials", r.creds.who)
	results := r.checkAll(ctx, checked)
	return append(out, fold(results, len(checked), in)...)
}

// buildHTTP builds the client that asks the kubelets, or says in r.why
// why none may.
func (r *runner) buildHTTP() error {
	cfg, ok := kubeletRest(r.creds, r.trust)
	if !ok {
		switch {
		case r.trust.serverSkips:
			r.why = "the server does not verify the kubelets' certificates (--kubelet-insecure-tls) and no kubelet CA was given to doctor, so doctor sent no credential: whoever answers at a node's address would have received it. That TLS answers was checked; the kubelet's authorization and endpoints were not"
			r.whyFix = "give doctor the CA that signs the kubelets' serving certificates with --kubelet-certificate-authority=<file>: it then asks, with a token of the server's ServiceAccount, each kubelet whose certificate verifies; better, have the server verify them too (that CA in its --kubelet-certificate-authority, without --kubelet-insecure-tls)"
		default:
			r.why = "no credential goes to a kubelet whose certificate cannot be verified as the server verifies it: " + r.trust.missing
			r.whyFix = "give doctor the CA that signs the kubelets' serving certificates: --kubelet-certificate-authority=<file>"
		}
		return nil
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	// As the server's client: a redirect is an answer, never followed,
	// so credentials go to the node's address only.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.http = hc
	return nil
}

// listNodes lists the nodes the server scrapes (its --node-selector), page
// by page, keeping of each only what the checks read.
func listNodes(ctx context.Context, in Input, selector string) ([]*corev1.Node, error) {
	var nodes []*corev1.Node
	opts := metav1.ListOptions{LabelSelector: selector, Limit: listPage}
	for {
		list, err := in.Client.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			nodes = append(nodes, slim(&list.Items[i]))
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

// slim copies what the checks read of a node: name, addresses, kubelet
// port, the resource path annotation and the Ready condition.
func slim(n *corev1.Node) *corev1.Node {
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}
	if p, ok := n.Annotations[kubelet.ResourcePathAnnotation]; ok {
		out.Annotations = map[string]string{kubelet.ResourcePathAnnotation: p}
	}
	out.Status.Addresses = n.Status.Addresses
	out.Status.DaemonEndpoints = n.Status.DaemonEndpoints
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{c}
		}
	}
	return out
}

// sample returns at most max of nodes (sorted by name), evenly spread.
func sample(nodes []*corev1.Node, max int) []*corev1.Node {
	if len(nodes) <= max {
		return nodes
	}
	out := make([]*corev1.Node, max)
	for i := range out {
		out[i] = nodes[i*len(nodes)/max]
	}
	return out
}

// checkAll checks nodes with in.Parallel workers, each node within
// in.NodeTimeout. Nodes not started before ctx ends are reported as not
// checked.
func (r *runner) checkAll(ctx context.Context, nodes []*corev1.Node) [][]result {
	results := make([][]result, len(nodes))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.in.Parallel, len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				nctx, cancel := context.WithTimeout(ctx, r.in.NodeTimeout)
				results[i] = r.check(nctx, nodes[i])
				cancel()
			}
		}()
	}
	i := 0
feed:
	for ; i < len(nodes); i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for ; i < len(nodes); i++ {
		results[i] = []result{{node: nodes[i].Name, cause: "not checked within doctor's time limit", Finding: doctor.Finding{
			Check: CheckUnchecked, Target: "node/" + nodes[i].Name, Status: doctor.StatusWarn,
			Message: fmt.Sprintf("node %s was not checked within doctor's time limit (%v)", nodes[i].Name, r.in.Timeout),
			Fix:     "raise --node-parallelism or lower --max-nodes (or --node-timeout, when nodes do not answer)",
		}}}
	}
	return results
}
