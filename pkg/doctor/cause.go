package doctor

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CauseKind classifies why an APIService is not Available.
type CauseKind string

// The causes the kube-aggregator's availability controller reports
// (k8s.io/kube-aggregator v0.37.2,
// pkg/controllers/status/remote/remote_available_controller.go): reasons of
// its own for the Service checks, and for FailedDiscoveryCheck the error of
// its GET of /apis/<group>/<version> on our server, in the message.
const (
	CauseNone              CauseKind = ""
	CauseUnchecked         CauseKind = "unchecked"          // no Available condition yet
	CauseLocal             CauseKind = "local"              // no spec.service
	CauseServiceNotFound   CauseKind = "service-not-found"  // reason ServiceNotFound
	CauseServicePort       CauseKind = "service-port"       // reason ServicePortError
	CauseNoEndpoints       CauseKind = "no-endpoints"       // reason EndpointsNotFound, or routing finds none
	CauseNoReadyEndpoints  CauseKind = "no-ready-endpoints" // reason MissingEndpoints
	CauseAccessError       CauseKind = "access-error"       // reasons ServiceAccessError, EndpointsAccessError
	CauseConnectionRefused CauseKind = "connection-refused"
	CauseTimeout           CauseKind = "timeout"
	CauseDNS               CauseKind = "dns"
	CauseTLSUnknownCA      CauseKind = "tls-unknown-authority"
	CauseTLSName           CauseKind = "tls-name"
	CauseTLSExpired        CauseKind = "tls-expired"
	CauseTLS               CauseKind = "tls"
	CauseUnauthorized      CauseKind = "unauthorized" // our server answered 401
	CauseForbidden         CauseKind = "forbidden"    // our server answered 403
	CauseNotReady          CauseKind = "not-ready"    // our server answered 503
	CauseNotServed         CauseKind = "not-served"   // our server answered 404: not this version
	CauseBadStatus         CauseKind = "bad-status"   // another status outside 2xx and 3xx
	CauseRoutingType       CauseKind = "routing-service-type"
	CauseDiscovery         CauseKind = "failed-discovery" // FailedDiscoveryCheck not recognised further
	CauseOther             CauseKind = "other"
)

// Cause is the decoded Available condition of an APIService.
type Cause struct {
	Kind CauseKind
	// Status is the HTTP status our server answered, for CauseUnauthorized,
	// CauseForbidden, CauseNotReady and CauseBadStatus; 0 otherwise.
	Status int
	// Reason and Message are the condition's, verbatim.
	Reason, Message string
}

var badStatus = regexp.MustCompile(`bad status from \S+: (\d{3})`)

// DecodeAvailable decodes the reason and message of an APIService's
// Available condition that is not True. The message texts are the
// kube-aggregator's: for FailedDiscoveryCheck "failing or missing response
// from <url>: <error>", where <error> is Go's net/http, net or crypto/tls
// error or "bad status from <url>: <code>", and "timed out waiting for
// <url>" when no answer came within 6 s.
func DecodeAvailable(reason, message string) Cause {
	c := Cause{Reason: reason, Message: message}
	switch reason {
	case "ServiceNotFound":
		c.Kind = CauseServiceNotFound
		return c
	case "ServicePortError":
		c.Kind = CauseServicePort
		return c
	case "EndpointsNotFound":
		c.Kind = CauseNoEndpoints
		return c
	case "MissingEndpoints":
		c.Kind = CauseNoReadyEndpoints
		return c
	case "ServiceAccessError", "EndpointsAccessError":
		c.Kind = CauseAccessError
		return c
	case "FailedDiscoveryCheck":
	default:
		c.Kind = CauseOther
		return c
	}
	m := message
	if s := badStatus.FindStringSubmatch(m); s != nil {
		c.Status, _ = strconv.Atoi(s[1])
		switch c.Status {
		case 401:
			c.Kind = CauseUnauthorized
		case 403:
			c.Kind = CauseForbidden
		case 503:
			c.Kind = CauseNotReady
		case 404:
			c.Kind = CauseNotServed
		default:
			c.Kind = CauseBadStatus
		}
		return c
	}
	switch {
	case strings.Contains(m, "connection refused"):
		c.Kind = CauseConnectionRefused
	case strings.Contains(m, "x509: certificate signed by unknown authority"),
		strings.Contains(m, "certificate signed by unknown authority"):
		c.Kind = CauseTLSUnknownCA
	case strings.Contains(m, "x509: certificate is valid for"),
		strings.Contains(m, "x509: certificate is not valid for any names"),
		strings.Contains(m, "doesn't contain any IP SANs"):
		c.Kind = CauseTLSName
	case strings.Contains(m, "x509: certificate has expired or is not yet valid"):
		c.Kind = CauseTLSExpired
	case strings.Contains(m, "x509:"), strings.Contains(m, "tls:"),
		strings.Contains(m, "server gave HTTP response to HTTPS client"):
		c.Kind = CauseTLS
	case strings.Contains(m, "no such host"), strings.Contains(m, "server misbehaving"):
		c.Kind = CauseDNS
	case strings.HasPrefix(m, "timed out waiting for"),
		strings.Contains(m, "context deadline exceeded"),
		strings.Contains(m, "Client.Timeout exceeded"),
		strings.Contains(m, "i/o timeout"),
		strings.Contains(m, "no route to host"):
		c.Kind = CauseTimeout
	case strings.Contains(m, "no endpoints available for service"):
		c.Kind = CauseNoEndpoints
	case strings.Contains(m, "unsupported service type"):
		c.Kind = CauseRoutingType
	default:
		c.Kind = CauseDiscovery
	}
	return c
}

// finding turns the cause into the failing finding of APIService name,
// which routes to Service svc ("namespace/name").
func (c Cause) finding(name, svc string) Finding {
	ns, svcName, _ := strings.Cut(svc, "/")
	f := Finding{Check: "apiservice", Target: name, Status: StatusFail}
	logs := fmt.Sprintf("kubectl -n %s logs -l k8s-app=metrics-server", ns)
	switch c.Kind {
	case CauseServiceNotFound:
		f.Message = fmt.Sprintf("APIService %s routes to service %s, which does not exist", name, svc)
		f.Fix = fmt.Sprintf("create service %s (kubectl apply -k manifests/base), or point the APIService's spec.service at the Service in front of metrics-server", svc)
	case CauseServicePort:
		f.Message = fmt.Sprintf("APIService %s names a port that service %s does not have", name, svc)
		f.Fix = fmt.Sprintf("set spec.service.port of APIService %s to a port of service %s (manifests/base uses 443): kubectl patch apiservice %s --type merge -p '{\"spec\":{\"service\":{\"port\":443}}}'", name, svc, name)
	case CauseNoEndpoints:
		f.Message = fmt.Sprintf("service %s has no endpoints: no metrics-server pod matches its selector", svc)
		f.Fix = fmt.Sprintf("check that the metrics-server pods exist and match the Service's selector: kubectl -n %s get pods -l k8s-app=metrics-server; kubectl -n %s describe deployment %s", ns, ns, svcName)
	case CauseNoReadyEndpoints:
		f.Message = fmt.Sprintf("service %s has no ready endpoint: the metrics-server pods run but are not ready (the server reports ready once its first scrapes of the nodes are done)", svc)
		f.Fix = fmt.Sprintf("see why the first scrapes fail in the node checks below and in %s", logs)
	case CauseAccessError:
		f.Status = StatusWarn
		f.Message = fmt.Sprintf("the kube-apiserver could not read service %s or its endpoints to check APIService %s", svc, name)
		f.Fix = "see the kube-apiserver's log; this is usually brief (etcd or the kube-apiserver starting)"
	case CauseConnectionRefused:
		f.Message = fmt.Sprintf("the kube-apiserver's connection to service %s was refused: nothing listens there; the server is not running, or its --secure-port differs from the Service's targetPort", svc)
		f.Fix = fmt.Sprintf("start metrics-server, or make the Service's targetPort its --secure-port: kubectl -n %s get pods,endpointslices -l k8s-app=metrics-server; %s", ns, logs)
	case CauseTimeout:
		f.Message = fmt.Sprintf("the kube-apiserver's request to service %s timed out: it cannot reach the metrics-server pod", svc)
		f.Fix = "let the kube-apiserver reach the pod's port (firewall, security group, NetworkPolicy); where the control plane is outside the pod network (EKS with a custom CNI, some private clusters) run the server with hostNetwork (chart hostNetwork.enabled=true)"
	case CauseDNS:
		f.Message = fmt.Sprintf("the kube-apiserver cannot resolve the host of service %s", svc)
		f.Fix = fmt.Sprintf("a Service of type ExternalName must name a host the kube-apiserver resolves: kubectl -n %s get service %s -o yaml", ns, svcName)
	case CauseTLSUnknownCA:
		f.Message = fmt.Sprintf("the kube-apiserver does not trust the serving certificate of service %s: caBundle of APIService %s is not the CA that signed it", svc, name)
		f.Fix = "let the server publish its CA (--tls-bootstrap-secret=kube-system/metrics-server-tls-bootstrap patches caBundle) or use cert-manager's cert-manager.io/inject-ca-from annotation; otherwise set spec.caBundle to the signing CA (base64 PEM)"
	case CauseTLSName:
		f.Message = fmt.Sprintf("the serving certificate of service %s is not valid for the name the kube-apiserver uses (%s.%s.svc)", svc, svcName, ns)
		f.Fix = fmt.Sprintf("issue the serving certificate for %s.%s.svc: --tls-bootstrap-service=%s with --tls-bootstrap-secret, or add the name to the Certificate's dnsNames", svcName, ns, svcName)
	case CauseTLSExpired:
		f.Message = fmt.Sprintf("the serving certificate of service %s has expired or is not yet valid", svc)
		f.Fix = fmt.Sprintf("renew it: with --tls-bootstrap-secret the server renews it at start (kubectl -n %s rollout restart deployment %s); with cert-manager see kubectl -n %s describe certificate", ns, svcName, ns)
	case CauseTLS:
		f.Message = fmt.Sprintf("the TLS handshake with service %s failed", svc)
		f.Fix = fmt.Sprintf("the Service's targetPort must be metrics-server's HTTPS --secure-port; see %s", logs)
	case CauseUnauthorized, CauseForbidden:
		f.Message = fmt.Sprintf("metrics-server refused the kube-apiserver's request with %d: it did not accept the kube-apiserver's proxy client certificate as a front proxy (the aggregation layer's request-header authentication)", c.Status)
		f.Fix = "see the aggregation-layer finding: the CN of the kube-apiserver's --proxy-client-cert-file must be in --requestheader-allowed-names and the certificate signed by --requestheader-client-ca-file"
		if c.Kind == CauseForbidden {
			f.Fix += "; if they match, metrics-server may lack the auth-delegator binding (see the rbac findings)"
		}
	case CauseNotReady:
		f.Message = fmt.Sprintf("metrics-server behind service %s answered 503: it runs but is not ready (ready once its first scrapes of the nodes are done)", svc)
		f.Fix = fmt.Sprintf("see why scrapes fail in the node checks below and in %s", logs)
	case CauseNotServed:
		f.Message = fmt.Sprintf("the server behind service %s does not serve %s (404): an older metrics-server, such as upstream's, serves only metrics.k8s.io/v1beta1", svc, strings.Replace(name, ".", " of ", 1))
		f.Fix = fmt.Sprintf("run kubemetrics' metrics-server behind service %s, or, to keep the older server, kubectl delete apiservice %s", svc, name)
	case CauseBadStatus:
		f.Message = fmt.Sprintf("metrics-server behind service %s answered the kube-apiserver's discovery request with %d", svc, c.Status)
		f.Fix = fmt.Sprintf("see %s", logs)
	case CauseRoutingType:
		f.Message = fmt.Sprintf("the kube-apiserver routes to endpoints (--enable-aggregator-routing=true) and service %s has a type it cannot route to", svc)
		f.Fix = "use a ClusterIP Service with --enable-aggregator-routing=true"
	case CauseDiscovery:
		f.Message = fmt.Sprintf("the kube-apiserver's discovery request to service %s failed", svc)
		f.Fix = fmt.Sprintf("see the condition below and %s", logs)
	default:
		f.Message = fmt.Sprintf("APIService %s is not Available (reason %s)", name, c.Reason)
		f.Fix = fmt.Sprintf("kubectl describe apiservice %s", name)
	}
	return f
}
