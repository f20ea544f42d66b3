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

// warnSecret records a Warning event on the Secret when err says it is not
// ours.
func (b *Bootstrapper) warnSecret(err error) {
	if !errors.Is(err, errNotOurs) {
		return
	}
	b.warn(&corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: b.cfg.Namespace, Name: b.cfg.Name, UID: b.secretUID},
		ReasonSecretNotOurs, "SyncServingCertificate", err.Error())
}

// warn records a Warning event regarding ref, when Config.Events is set.
// An object without a namespace (an APIService) has its events in
// namespace default.
func (b *Bootstrapper) warn(ref *corev1.ObjectReference, reason, action, note string) {
	if b.cfg.Events == nil {
		return
	}
	b.cfg.Events.Eventf(ref, nil, corev1.EventTypeWarning, reason, action, "%s", excerpt.Clip(note, maxNote))
}
