package doctor

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// APIServiceResource is apiregistration.k8s.io/v1 apiservices, read through
// a dynamic client (so that this package needs no kube-aggregator clientset)
// into the kube-aggregator's own type.
var APIServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// MetricsAPIServices returns the APIServices our server registers, v1beta1
// first: the HPA controller reads only v1beta1, kubectl 1.37 prefers v1.
func MetricsAPIServices() []string {
	return []string{"v1beta1.metrics.k8s.io", "v1.metrics.k8s.io"}
}

// injectCAFrom is cert-manager's annotation: its CA injector copies the CA
// of Certificate <namespace>/<name> into the APIService's caBundle.
const injectCAFrom = "cert-manager.io/inject-ca-from"

func namespaceOf(ref string) string { ns, _, _ := strings.Cut(ref, "/"); return ns }
func nameOf(ref string) string      { _, n, _ := strings.Cut(ref, "/"); return n }

// APIServiceState is what CheckAPIServices learned of one APIService, for
// the checks that interpret its failure further (the aggregation layer).
type APIServiceState struct {
	// Name is the APIService's name, e.g. "v1beta1.metrics.k8s.io".
	Name string
	// Found is false when the APIService does not exist or could not be read.
	Found bool
	// Service is the Service it routes to ("namespace/name"); empty when
	// not found or local.
	Service string
	// Cause is the decoded Available condition; CauseNone when Available.
	Cause Cause
}

// CheckAPIServices reads each named APIService (MetricsAPIServices() when
// names is empty) and returns one finding each: ok when Available, else the
// condition decoded into a cause with its fix. A missing v1 is a warning
// (kubectl falls back to v1beta1; upstream registers only v1beta1), a
// missing v1beta1 a failure (the HPA controller reads nothing else).
func CheckAPIServices(ctx context.Context, client dynamic.Interface, names []string) ([]Finding, []APIServiceState) {
	if len(names) == 0 {
		names = MetricsAPIServices()
	}
	var findings []Finding
	var states []APIServiceState
	for _, name := range names {
		f, st := checkAPIService(ctx, client, name)
		findings = append(findings, f...)
		states = append(states, st)
	}
	return findings, states
}

func checkAPIService(ctx context.Context, client dynamic.Interface, name string) ([]Finding, APIServiceState) {
	st := APIServiceState{Name: name}
	u, err := client.Resource(APIServiceResource).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		f := Finding{Check: "apiservice", Target: name, Status: StatusFail,
			Message: fmt.Sprintf("APIService %s does not exist: the HorizontalPodAutoscaler reads only v1beta1.metrics.k8s.io", name),
			Fix:     "install the APIServices: kubectl apply -k manifests/base (or helm install with apiService.create=true)"}
		if strings.HasPrefix(name, "v1.") {
			f.Status = StatusWarn
			f.Message = fmt.Sprintf("APIService %s does not exist: kubectl falls back to v1beta1, which works, but clients that ask for metrics.k8s.io/v1 get 404", name)
			f.Fix = "register v1 as well: kubectl apply -k manifests/base (or helm upgrade with apiService.v1=true)"
		}
		return []Finding{f}, st
	}
	if err != nil {
		return []Finding{{Check: "apiservice", Target: name, Status: StatusWarn,
			Message: fmt.Sprintf("cannot read APIService %s, so it was not checked", name),
			Fix:     "run the doctor with a kubeconfig that may get apiservices.apiregistration.k8s.io",
			Detail:  err.Error()}}, st
	}
	st.Found = true
	var as apiregv1.APIService
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &as); err != nil {
		return []Finding{{Check: "apiservice", Target: name, Status: StatusWarn,
			Message: fmt.Sprintf("cannot decode APIService %s", name), Detail: err.Error()}}, st
	}
	if as.Spec.Service == nil {
		st.Cause = Cause{Kind: CauseLocal}
		return []Finding{{Check: "apiservice", Target: name, Status: StatusFail,
			Message: fmt.Sprintf("APIService %s has no spec.service: the kube-apiserver serves it itself, not our server", name),
			Fix:     fmt.Sprintf("kubectl delete apiservice %s, then apply the manifests again (kubectl apply -k manifests/base)", name)}}, st
	}
	svc := fmt.Sprintf("%s/%s", as.Spec.Service.Namespace, as.Spec.Service.Name)
	st.Service = svc

	var findings []Finding
	if as.Spec.InsecureSkipTLSVerify {
		findings = append(findings, Finding{Check: "apiservice-tls", Target: name, Status: StatusWarn,
			Message: fmt.Sprintf("APIService %s sets insecureSkipTLSVerify: the kube-apiserver sends every user's identity to service %s without verifying who answers", name, svc),
			Fix:     "let the server make and publish its CA (--tls-bootstrap-secret=kube-system/metrics-server-tls-bootstrap, the default of manifests/base and the chart, which ship that Secret empty) or use cert-manager (manifests/components/cert-manager, chart tls.type=certManager)"})
	} else if from := as.Annotations[injectCAFrom]; len(as.Spec.CABundle) == 0 && from != "" {
		findings = append(findings, Finding{Check: "apiservice-tls", Target: name, Status: StatusFail,
			Message: fmt.Sprintf("APIService %s has no caBundle yet: cert-manager's CA injector has not filled it from Certificate %s", name, from),
			Fix:     fmt.Sprintf("check that cert-manager (with its cainjector) runs and the Certificate is Ready: kubectl -n %s describe certificate %s", namespaceOf(from), nameOf(from))})
	} else if len(as.Spec.CABundle) == 0 {
		findings = append(findings, Finding{Check: "apiservice-tls", Target: name, Status: StatusWarn,
			Message: fmt.Sprintf("APIService %s has no caBundle: the kube-apiserver verifies service %s against its own trust roots only, which rarely signed a serving certificate", name, svc),
			Fix:     "start the server with --tls-bootstrap-secret=kube-system/metrics-server-tls-bootstrap (it patches caBundle) or annotate the APIService with cert-manager.io/inject-ca-from"})
	}

	for _, c := range as.Status.Conditions {
		if c.Type != apiregv1.Available {
			continue
		}
		if c.Status == apiregv1.ConditionTrue {
			return append([]Finding{{Check: "apiservice", Target: name, Status: StatusOK,
				Message: fmt.Sprintf("APIService %s is Available (service %s)", name, svc)}}, findings...), st
		}
		st.Cause = DecodeAvailable(c.Reason, c.Message)
		f := st.Cause.finding(name, svc)
		f.Detail = fmt.Sprintf("Available=%s reason=%s: %s", c.Status, c.Reason, c.Message)
		return append([]Finding{f}, findings...), st
	}
	st.Cause = Cause{Kind: CauseUnchecked}
	return append([]Finding{{Check: "apiservice", Target: name, Status: StatusWarn,
		Message: fmt.Sprintf("APIService %s has no Available condition yet: the kube-apiserver has not checked it", name),
		Fix:     "wait a minute and run the doctor again; if it stays so, the kube-apiserver runs without the aggregation layer (see the aggregation-layer check)"}}, findings...), st
}
