package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/pkg/pemcerts"
)

// The ConfigMap in which the kube-apiserver publishes its client and
// request-header (front proxy) authentication for aggregated servers.
const (
	AuthConfigMapNamespace = "kube-system"
	AuthConfigMapName      = "extension-apiserver-authentication"
)

// aggregationFix names the kube-apiserver flags that turn the aggregation
// layer on (kubeadm sets all of them).
const aggregationFix = "start the kube-apiserver with --requestheader-client-ca-file=<front-proxy CA>, " +
	"--requestheader-allowed-names=front-proxy-client, --requestheader-username-headers=X-Remote-User, " +
	"--requestheader-group-headers=X-Remote-Group, --requestheader-extra-headers-prefix=X-Remote-Extra-, " +
	"--proxy-client-cert-file and --proxy-client-key-file (a client certificate of that CA whose CN is an allowed name)"

const aggregationTarget = "configmap/" + AuthConfigMapNamespace + "/" + AuthConfigMapName

// AggregationInput is what CheckAggregationLayer reads besides the cluster.
type AggregationInput struct {
	// ServerArgs are metrics-server's command-line arguments as its
	// Deployment gives them; nil when no Deployment was found. Its own
	// --requestheader-* flags replace what the ConfigMap publishes.
	ServerArgs []string
	// APIServices are the states CheckAPIServices returned: a 401 or 403
	// from our server is read here as a refused front proxy.
	APIServices []APIServiceState
	// Now is the time certificates are checked against.
	Now time.Time
}

// CheckAggregationLayer checks that the kube-apiserver publishes a
// request-header client CA, allowed names and the user and group headers in
// kube-system/extension-apiserver-authentication, that metrics-server's own
// --requestheader-* flags do not contradict them, and, when our server
// refused the kube-apiserver's discovery requests with 401 or 403, says the
// kube-apiserver's proxy client certificate is probably not allowed.
func CheckAggregationLayer(ctx context.Context, client kubernetes.Interface, in AggregationInput) []Finding {
	cm, err := client.CoreV1().ConfigMaps(AuthConfigMapNamespace).Get(ctx, AuthConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return []Finding{{Check: "aggregation-layer", Target: aggregationTarget, Status: StatusFail,
			Message: "the kube-apiserver publishes no " + aggregationTarget + ": it runs without the aggregation layer, so no aggregated API (metrics.k8s.io) can be served",
			Fix:     aggregationFix}}
	}
	if err != nil {
		return []Finding{{Check: "aggregation-layer", Target: aggregationTarget, Status: StatusWarn,
			Message: "cannot read " + aggregationTarget + ", so the aggregation layer was not checked",
			Fix:     "run the doctor with a kubeconfig that may get configmaps in kube-system",
			Detail:  err.Error()}}
	}
	var findings []Finding
	fail := func(msg, fix, detail string) {
		findings = append(findings, Finding{Check: "aggregation-layer", Target: aggregationTarget, Status: StatusFail, Message: msg, Fix: fix, Detail: detail})
	}

	caPEM := cm.Data["requestheader-client-ca-file"]
	var caSummary string
	if strings.TrimSpace(caPEM) == "" {
		fail(aggregationTarget+" has no requestheader-client-ca-file: the kube-apiserver runs without --requestheader-client-ca-file, so aggregated servers cannot tell who the user is",
			aggregationFix, "")
	} else {
		certs, err := pemcerts.Parse([]byte(caPEM))
		bad := ""
		if err != nil {
			bad = err.Error()
		}
		switch {
		case len(certs) == 0:
			fail(aggregationTarget+" has a requestheader-client-ca-file without a certificate", aggregationFix, bad)
		default:
			var expired []string
			latest := time.Time{}
			for _, c := range certs {
				if in.Now.After(c.NotAfter) {
					expired = append(expired, fmt.Sprintf("%q (expired %s)", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339)))
				} else if c.NotAfter.After(latest) {
					latest = c.NotAfter
				}
			}
			if len(expired) == len(certs) {
				fail("every requestheader client CA in "+aggregationTarget+" has expired: "+strings.Join(expired, ", "),
					"renew the front-proxy CA and the kube-apiserver's --proxy-client-cert-file (kubeadm certs renew front-proxy-ca is not enough: kubeadm init phase certs front-proxy-ca, then restart the kube-apiserver)", "")
			}
			caSummary = fmt.Sprintf("%d requestheader client CA certificate(s), valid until %s", len(certs), latest.UTC().Format(time.RFC3339))
		}
	}

	allowed, errA := jsonList(cm.Data["requestheader-allowed-names"])
	users, errU := jsonList(cm.Data["requestheader-username-headers"])
	groups, errG := jsonList(cm.Data["requestheader-group-headers"])
	for _, e := range []error{errA, errU, errG} {
		if e != nil {
			fail("cannot read "+aggregationTarget, "", e.Error())
		}
	}
	if len(users) == 0 {
		fail(aggregationTarget+" has no requestheader-username-headers: aggregated servers cannot learn the user of a proxied request",
			"start the kube-apiserver with --requestheader-username-headers=X-Remote-User", "")
	}
	if len(groups) == 0 {
		fail(aggregationTarget+" has no requestheader-group-headers: aggregated servers cannot learn the user's groups",
			"start the kube-apiserver with --requestheader-group-headers=X-Remote-Group", "")
	}

	// Our server's own flags replace the ConfigMap's request-header
	// settings when it names its own CA file.
	own := flagValues(in.ServerArgs)
	effective, whose, source := allowed, "the kube-apiserver's --requestheader-allowed-names "+fmt.Sprint(allowed), "published by the kube-apiserver"
	if _, ownCA := own["requestheader-client-ca-file"]; ownCA {
		ownNames := splitList(own["requestheader-allowed-names"])
		effective, whose, source = ownNames, "metrics-server's own --requestheader-allowed-names "+fmt.Sprint(ownNames), "metrics-server's own flag"
		if len(allowed) > 0 && len(ownNames) > 0 && !overlaps(allowed, ownNames) {
			fail(fmt.Sprintf("metrics-server's --requestheader-allowed-names=%s replaces the kube-apiserver's %v and shares no name with it: the kube-apiserver's proxy client certificate is refused",
				strings.Join(ownNames, ","), allowed),
				"drop --requestheader-client-ca-file and --requestheader-allowed-names from metrics-server's args (it then reads "+aggregationTarget+"), or list the proxy client certificate's CN in them",
				"")
		}
	} else if own["authentication-skip-lookup"] == "true" {
		fail("metrics-server runs with --authentication-skip-lookup and no --requestheader-client-ca-file: it does not read "+aggregationTarget+" and accepts no front proxy",
			"drop --authentication-skip-lookup from metrics-server's args", "")
	}

	for _, st := range in.APIServices {
		if st.Cause.Kind != CauseUnauthorized && st.Cause.Kind != CauseForbidden {
			continue
		}
		f := Finding{Check: "aggregation-layer", Target: "kube-apiserver proxy client certificate", Status: StatusFail,
			Detail: fmt.Sprintf("APIService %s: %s", st.Name, st.Cause.Message)}
		if len(effective) > 0 {
			f.Message = fmt.Sprintf("metrics-server answered the kube-apiserver's proxied discovery with %d: the CN of the kube-apiserver's proxy client certificate is probably not in %s", st.Cause.Status, whose)
			f.Fix = "make the CN of the kube-apiserver's --proxy-client-cert-file (openssl x509 -noout -subject -in <file>) one of the kube-apiserver's --requestheader-allowed-names, and give metrics-server no --requestheader-allowed-names of its own unless it lists that CN"
		} else {
			f.Message = fmt.Sprintf("metrics-server answered the kube-apiserver's proxied discovery with %d: the kube-apiserver's proxy client certificate is probably not signed by the requestheader client CA", st.Cause.Status)
			f.Fix = "sign the kube-apiserver's --proxy-client-cert-file with the CA of its --requestheader-client-ca-file, and give metrics-server no --requestheader-client-ca-file of its own"
		}
		findings = append(findings, f)
		break
	}

	if len(findings) > 0 {
		return findings
	}
	if len(effective) == 0 {
		return []Finding{{Check: "aggregation-layer", Target: aggregationTarget, Status: StatusWarn,
			Message: "request-header authentication is on (" + caSummary + ") but without allowed names: any client certificate of that CA may act as a front proxy and claim any user",
			Fix:     "start the kube-apiserver with --requestheader-allowed-names=<CN of its --proxy-client-cert-file> (kubeadm: front-proxy-client)"}}
	}
	return []Finding{{Check: "aggregation-layer", Target: aggregationTarget, Status: StatusOK,
		Message: fmt.Sprintf("request-header authentication is on: %s; allowed names %v (%s); user headers %v, group headers %v",
			caSummary, effective, source, users, groups)}}
}

// jsonList decodes a ConfigMap value the kube-apiserver writes as a JSON
// array of strings; empty is an empty list.
func jsonList(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, fmt.Errorf("value %q is not a JSON list of strings: %w", v, err)
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func overlaps(a, b []string) bool {
	for _, s := range a {
		if slices.Contains(b, s) {
			return true
		}
	}
	return false
}
