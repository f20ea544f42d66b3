package certbootstrap

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubemetrics/metrics-server/pkg/excerpt"
)

// EventRecorder writes an event regarding an object; client-go's
// events.EventRecorder (k8s.io/client-go/tools/events) is one. It must not
// block on the kube-apiserver, and deals with its refusals itself.
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Event reasons.
const (
	// ReasonSecretNotOurs: the Secret is not the bootstrap's to write; it
	// is left alone.
	ReasonSecretNotOurs = "ServingSecretNotOurs"
	// ReasonAPIServiceNotOurs: another server backs the APIService, or
	// another issuer keeps its caBundle; it is left alone.
	ReasonAPIServiceNotOurs = "APIServiceNotOurs"
)

// maxNote is below the API's 1 KiB limit of an event's note.
const maxNote = 1000

// warnSecret records, when err says the Secret is not ours, a Warning
// event regarding each configured APIService (its caBundle is then left
// alone), with the Secret as the related object. Not regarding the Secret
// itself: an event about a namespaced object must live in that object's
// namespace, and the server may write events only in namespace default
// (the manifests' Role), so the operator finds it where they look when the
// metrics API fails: kubectl describe apiservice.
func (b *Bootstrapper) warnSecret(err error) {
	if !errors.Is(err, errNotOurs) {
		return
	}
	secret := &corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: b.cfg.Namespace, Name: b.cfg.Name, UID: b.secretUID}
	for _, name := range b.cfg.APIServiceNames {
		b.warnRelated(b.apiServiceRef(name), secret, ReasonSecretNotOurs, "SyncServingCertificate", err.Error())
	}
}

// warn records a Warning event regarding ref, when Config.Events is set.
// An object without a namespace (an APIService) has its events in
// namespace default.
func (b *Bootstrapper) warn(ref *corev1.ObjectReference, reason, action, note string) {
	b.warnRelated(ref, nil, reason, action, note)
}

// warnRelated is warn with a related object (nil: none).
func (b *Bootstrapper) warnRelated(ref, related *corev1.ObjectReference, reason, action, note string) {
	if b.cfg.Events == nil {
		return
	}
	var rel runtime.Object
	if related != nil {
		rel = related
	}
	b.cfg.Events.Eventf(ref, rel, corev1.EventTypeWarning, reason, action, "%s", excerpt.Clip(note, maxNote))
}

// apiServiceRef is the reference of the APIService name for an event.
func (b *Bootstrapper) apiServiceRef(name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService", Name: name, UID: b.apiServiceUIDs[name]}
}
