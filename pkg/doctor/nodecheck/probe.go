package nodecheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/kubeletflags"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// Check ids of the findings of this package, in the order they are
// reported.
const (
	CheckSettings    = "node-settings"
	CheckCredentials = "node-credentials"
	CheckNodes       = "nodes"
	CheckAddress     = "node-address"
	CheckResolve     = "node-resolve"
	CheckConnect     = "node-connect"
	CheckTLS         = "node-tls"
	CheckAuthz       = "node-authz"
	CheckEndpoint    = "node-endpoint"
	CheckClock       = "node-clock"
	// CheckUnchecked: the node was not checked within the time limit.
	CheckUnchecked = "node"
)

var checkOrder = []string{CheckSettings, CheckCredentials, CheckNodes, CheckUnchecked, CheckAddress,
	CheckResolve, CheckConnect, CheckTLS, CheckAuthz, CheckEndpoint, CheckClock}

// result is one finding about one node, and the cause it is folded by
// with the same finding of other nodes: words that hold for each of them
// ("the kubelet's serving certificate has no IP SAN for the address
// asked").
type result struct {
	node string
	doctor.Finding
	cause string
}

// runner checks nodes; it is shared by the workers and read-only once
// built, but for reviews (which locks itself).
type runner struct {
	in    Input
	ko    *kubeletflags.Options
	cfg   kubelet.Config
	trust trust
	creds creds
	// http asks the kubelets; nil when no credential may be sent (why
	// says why, whyFix what to do).
	http        *http.Client
	why, whyFix string
	reviews     *reviews
}

// probe is what is learned of one node, step by step.
type probe struct {
	r      *runner
	node   *corev1.Node
	addr   string // host:port
	host   string
	out    []result
	target string
}

func (p *probe) add(check string, status doctor.Status, cause, message, fix, detail string) {
	p.out = append(p.out, result{node: p.node.Name, cause: cause, Finding: doctor.Finding{
		Check: check, Target: p.target, Status: status, Message: message, Fix: fix, Detail: detail,
	}})
}

// check runs every check of one node within ctx and returns its results.
// A step that fails ends the checks that depend on it: no TLS without a
// connection, no request to a kubelet whose certificate the server would
// refuse.
func (r *runner) check(ctx context.Context, node *corev1.Node) []result {
	p := &probe{r: r, node: node, target: "node/" + node.Name}
	if !p.address() || !p.resolve(ctx) {
		return p.out
	}
	conn := p.connect(ctx)
	if conn == nil {
		return p.out
	}
	if r.trust.plainHTTP {
		_ = conn.Close()
		p.add(CheckTLS, doctor.StatusWarn, "the server talks plain HTTP to kubelets (--deprecated-kubelet-completely-insecure)",
			fmt.Sprintf("not checked: the server talks plain HTTP to the kubelet at %s and sends no credentials (--deprecated-kubelet-completely-insecure)", p.addr),
			"serve the kubelets' metrics over HTTPS (port 10250, webhook authentication) and drop --deprecated-kubelet-completely-insecure", "")
	} else if !p.tls(ctx, conn) {
		return p.out
	}
	p.endpoints(ctx)
	return p.out
}

// address finds the address the server would ask, with the server's own
// choice.
func (p *probe) address() bool {
	addr, err := kubelet.NodeAddress(p.node, p.r.cfg)
	if err != nil {
		p.add(CheckAddress, doctor.StatusFail, "the node has none of the address types the server looks for",
			fmt.Sprintf("node %s: %v", p.node.Name, err),
			fmt.Sprintf("list a type the node has in the server's --kubelet-preferred-address-types (now %s)", strings.Join(p.r.ko.PreferredAddressTypes, ",")), "")
		return false
	}
	p.addr = addr
	p.host, _, _ = net.SplitHostPort(addr)
	p.add(CheckAddress, doctor.StatusOK, "the server finds an address of a type in --kubelet-preferred-address-types",
		fmt.Sprintf("the server asks the kubelet at %s (%s)", addr, addressType(p.node, p.host)), "", "")
	return true
}

// addressType names the node's address type(s) of host.
func addressType(node *corev1.Node, host string) string {
	var types []string
	for _, a := range node.Status.Addresses {
		if a.Address == host {
			types = append(types, string(a.Type))
		}
	}
	return strings.Join(types, ", ")
}

// resolve looks a host name up; an IP address needs no finding.
func (p *probe) resolve(ctx context.Context) bool {
	if net.ParseIP(p.host) != nil {
		return true
	}
	addrs, err := p.r.in.Resolver.LookupHost(ctx, p.host)
	if err != nil {
		p.add(CheckResolve, doctor.StatusFail, "the node's host name does not resolve",
			fmt.Sprintf("the address the server asks for node %s, %s (%s), does not resolve from this machine: %v", p.node.Name, p.host, addressType(p.node, p.host), err),
			"have the server ask the nodes' IP addresses: --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname (as upstream's manifests do), or make the node names resolvable in the cluster's DNS",
			err.Error())
		return false
	}
	p.add(CheckResolve, doctor.StatusOK, "the node's host name resolves",
		fmt.Sprintf("%s resolves to %s", p.host, strings.Join(addrs, ", ")), "", "")
	return true
}

// connect opens a TCP connection to the kubelet; nil when it failed.
func (p *probe) connect(ctx context.Context) net.Conn {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err == nil {
		p.add(CheckConnect, doctor.StatusOK, "the kubelet port accepts connections",
			fmt.Sprintf("%s accepts TCP connections", p.addr), "", "")
		return conn
	}
	cause, fix := p.connectCause(err)
	msg := fmt.Sprintf("cannot connect to the kubelet of node %s at %s from this machine: %s", p.node.Name, p.addr, cause)
	if why := notReady(p.node); why != "" {
		msg += "; the node is " + why
	}
	p.add(CheckConnect, doctor.StatusFail, cause, msg, fix, err.Error())
	return nil
}

// connectCause words a failed dial and what to do about it.
func (p *probe) connectCause(err error) (cause, fix string) {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "connection refused: nothing listens on that port"
		fix = "check that the node's kubelet runs (systemctl status kubelet)"
		if sp := p.node.Status.DaemonEndpoints.KubeletEndpoint.Port; sp > 0 && strconv.Itoa(int(sp)) != portOf(p.addr) {
			fix += fmt.Sprintf("; the node reports its kubelet on port %d: add --kubelet-use-node-status-port to the server's args", sp)
		} else {
			fix += "; if it listens on another port, give the server --kubelet-port or --kubelet-use-node-status-port"
		}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		cause = "no answer (timeout): a firewall or security group drops the traffic, or the node is down"
		fix = fmt.Sprintf("allow TCP to port %s of the nodes from the server's pods (from the control plane's network when it runs with hostNetwork); doctor connects from this machine, which may not reach the nodes' network: run it from inside the cluster to be sure", portOf(p.addr))
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		cause = "no route to the address"
		fix = "check the node's address in its status (kubectl get node -o wide) and the routes to it; doctor connects from this machine, which may not reach the nodes' network"
	default:
		cause = "the connection failed"
		fix = "see the detail"
	}
	return cause, fix
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// notReady describes the node's Ready condition when it is not True.
func notReady(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return ""
		}
		s := fmt.Sprintf("NotReady (Ready=%s", c.Status)
		if c.Reason != "" {
			s += ", " + c.Reason
		}
		if c.Message != "" {
			s += ": " + c.Message
		}
		return s + ")"
	}
	return ""
}

// tls shakes hands over conn, closes it, and judges the kubelet's
// certificate as the server would; false when no request may follow.
func (p *probe) tls(ctx context.Context, conn net.Conn) bool {
	cfg := &tls.Config{
		// Verified below, by hand, so that every problem of the
		// certificate is named rather than the first.
		InsecureSkipVerify: true, //nolint:gosec // the certificate is judged in judgeCert
		NextProtos:         []string{"http/1.1"},
		MinVersion:         tls.VersionTLS12,
	}
	if net.ParseIP(p.host) == nil {
		cfg.ServerName = p.host
	}
	tc := tls.Client(conn, cfg)
	defer func() { _ = tc.Close() }()
	if err := tc.HandshakeContext(ctx); err != nil {
		cause, fix := kubelet.ExplainTLS(err, p.addr)
		var netErr net.Error
		switch {
		case cause != "":
		case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
			cause = "the kubelet accepted the connection but did not complete the TLS handshake in time"
			fix = "check the kubelet's load and log on the node (journalctl -u kubelet)"
		default:
			cause, fix = "the TLS handshake failed", "see the detail; the kubelet's log on the node may say more"
		}
		p.add(CheckTLS, doctor.StatusFail, cause, fmt.Sprintf("node %s, %s: %s", p.node.Name, p.addr, cause), fix, err.Error())
		return false
	}
	certs := tc.ConnectionState().PeerCertificates
	v := judgeCert(certs, p.host, p.addr, p.r.in.Clock.Now(), p.r.trust)
	switch {
	case p.r.trust.serverSkips:
		verified := p.r.trust.verified() && len(v.problems) == 0
		msg := fmt.Sprintf("not verified: the server runs with --kubelet-insecure-tls, so it sends its credentials to whatever answers at %s without checking what that is (for test clusters only)", p.addr)
		switch {
		case verified:
			msg += "; doctor verified it: " + v.ok
		case len(v.problems) > 0:
			msg += "; the certificate would fail verification: " + v.message() + "; doctor sent no credential to it"
		default:
			msg += "; TLS answers (" + v.ok + "), but doctor cannot verify the certificate without the kubelet CA, so it sent no credential to it"
		}
		p.add(CheckTLS, doctor.StatusWarn, "the server does not verify kubelet certificates (--kubelet-insecure-tls)", msg,
			"have the kubelets serve certificates signed by the cluster's CA (serverTLSBootstrap: true in the KubeletConfiguration, then approve their CSRs), give that CA with --kubelet-certificate-authority and drop --kubelet-insecure-tls", v.detail)
		// Ask only a kubelet verified here; without a client, endpoints
		// says why nothing was asked.
		return verified || p.r.http == nil
	case len(v.problems) > 0:
		first := v.problems[0]
		p.add(CheckTLS, doctor.StatusFail, first.cause, fmt.Sprintf("node %s, %s: %s", p.node.Name, p.addr, v.message()), first.fix, v.detail)
		return false
	case !p.r.trust.verified():
		p.add(CheckTLS, doctor.StatusWarn, "the chain was not checked: the server's kubelet CA is not known here",
			fmt.Sprintf("%s; %s", v.ok, p.r.trust.missing),
			"give doctor the CA that signs the kubelets' serving certificates: --kubelet-certificate-authority=<file>", v.detail)
		return true // endpoints says why nothing is asked
	}
	p.add(CheckTLS, doctor.StatusOK, "the kubelet's serving certificate is valid for the address the server asks", v.ok, "", "")
	return true
}
