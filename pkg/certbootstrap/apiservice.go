package certbootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// apiServiceState is what the last sync of one APIService found, so that a
// state is logged when it starts, not on every sync.
type apiServiceState string

const (
	stateVerified apiServiceState = "verified" // caBundle is the CA, TLS verified
	statePatched  apiServiceState = "patched"
	stateMissing  apiServiceState = "missing"
	stateFailed   apiServiceState = "failed"
	stateForeign  apiServiceState = "foreign" // not ours to patch: left alone
)

// caInjectionAnnotations ask cert-manager's cainjector to keep an
// APIService's caBundle: someone else's CA goes there.
var caInjectionAnnotations = []string{
	"cert-manager.io/inject-ca-from",
	"cert-manager.io/inject-ca-from-secret",
	"cert-manager.io/inject-apiserver-ca",
}

// errLocal is the error of an APIService served by the kube-apiserver
// itself, which may have no caBundle.
var errLocal = errors.New("it has no spec.service: the kube-apiserver serves it itself, so it cannot have a caBundle; remove it from --tls-bootstrap-apiservices")

// syncAPIServices makes every configured APIService that is ours verify
// the server with caPEM: spec.caBundle = caPEM and
// spec.insecureSkipTLSVerify = false, patched only when either differs. An
// APIService is ours when its spec.service is the Service the certificate
// is for (Config.Namespace/Config.Service) and no cert-manager annotation
// asks for its caBundle to be injected; another is left alone, said once
// in a log line and a Warning event when its state changes. A missing or
// failing APIService is logged (once when its state changes) and tried
// again at the next sync; it never stops the others.
func (b *Bootstrapper) syncAPIServices(ctx context.Context, caPEM []byte) {
	for _, name := range b.cfg.APIServiceNames {
		state, err := b.syncAPIService(ctx, name, caPEM)
		prev, prevWhy := b.apiServiceStates[name], b.apiServiceWhy[name]
		b.apiServiceStates[name] = state
		delete(b.apiServiceWhy, name)
		switch {
		case state == stateForeign:
			b.apiServiceWhy[name] = err.Error()
			if prev != stateForeign || prevWhy != err.Error() {
				klog.InfoS("Leaving the APIService's caBundle alone", "apiService", name, "why", err.Error())
				b.warn(b.apiServiceRef(name),
					ReasonAPIServiceNotOurs, "PatchCABundle", "metrics-server leaves the caBundle of APIService "+name+" alone: "+err.Error())
			}
		case state == statePatched:
			klog.InfoS("Set the APIService's caBundle to the serving CA and turned TLS verification on", "apiService", name)
		case state == stateMissing && prev != stateMissing:
			klog.InfoS("The APIService does not exist (yet); its caBundle will be set once it does, checked every sync",
				"apiService", name, "interval", b.cfg.Interval)
		case state == stateFailed && prev != stateFailed:
			klog.ErrorS(err, "Cannot set the APIService's caBundle; trying again every sync", "apiService", name, "interval", b.cfg.Interval)
		case state == stateFailed:
			klog.V(4).InfoS("Still cannot set the APIService's caBundle", "apiService", name, "err", err)
		}
	}
}

// syncAPIService brings one APIService to caPEM when it is ours and says
// what it found; the error of stateForeign says why it is not ours.
func (b *Bootstrapper) syncAPIService(ctx context.Context, name string, caPEM []byte) (apiServiceState, error) {
	client := b.cfg.APIServices.APIServices()
	svc, err := client.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return stateMissing, nil
	}
	if err != nil {
		return stateFailed, apiServiceErr(name, "reading", "get", err)
	}
	if svc.Spec.Service == nil {
		return stateFailed, fmt.Errorf("APIService %s: %w", name, errLocal)
	}
	b.apiServiceUIDs[name] = svc.UID
	if got := svc.Spec.Service; got.Namespace != b.cfg.Namespace || got.Name != b.cfg.Service {
		return stateForeign, fmt.Errorf("its spec.service is %s/%s, not %s/%s that this server's certificate is for: another server backs it, whose CA it must keep",
			got.Namespace, got.Name, b.cfg.Namespace, b.cfg.Service)
	}
	for _, a := range caInjectionAnnotations {
		if v, ok := svc.Annotations[a]; ok {
			return stateForeign, fmt.Errorf("it has the annotation %s=%s: cert-manager's cainjector keeps its caBundle", a, v)
		}
	}
	if bytes.Equal(svc.Spec.CABundle, caPEM) && !svc.Spec.InsecureSkipTLSVerify {
		return stateVerified, nil
	}
	// Both fields in one merge patch: the API refuses a caBundle beside
	// insecureSkipTLSVerify: true.
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"caBundle": caPEM, "insecureSkipTLSVerify": false}})
	if err != nil {
		return stateFailed, err
	}
	if _, err := client.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsNotFound(err) {
			return stateMissing, nil
		}
		return stateFailed, apiServiceErr(name, "patching", "patch", err)
	}
	return statePatched, nil
}

// apiServiceErr wraps an error of an APIService's API call; a Forbidden one
// names the RBAC rule that is missing.
func apiServiceErr(name, doing, verb string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s APIService %s is forbidden: add %q to the resourceNames of the rule {apiGroups: [\"apiregistration.k8s.io\"], resources: [\"apiservices\"], verbs: [\"get\", \"patch\"]} "+
			"of a ClusterRole bound to the server's ServiceAccount (verb %s is missing): %w", doing, name, name, verb, err)
	}
	return fmt.Errorf("%s APIService %s: %w", doing, name, err)
}
