package certbootstrap

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// AnnotationOwner marks a Secret the bootstrap made. A Secret without it is
// never written: it belongs to someone else (cert-manager, an operator).
const AnnotationOwner = "kubemetrics.io/tls-bootstrap"

// errNotOurs is the error of a Secret the bootstrap did not make.
var errNotOurs = errors.New("was not made by the serving-certificate bootstrap")

// maxWrites bounds the writes of one sync that lose a race to another
// writer (AlreadyExists, Conflict) before it gives up until the next.
const maxWrites = 5

// syncSecret makes the Secret hold a CA and a serving certificate that need
// no renewal at now and returns them: it creates the Secret when absent,
// replaces the serving certificate (and the CA when it would expire first,
// or cannot be read) when renewal is due, and otherwise adopts what is
// there, whoever wrote it. A write that loses a race re-reads and adopts the
// winner's. A Secret without AnnotationOwner is an error and left alone.
func (b *Bootstrapper) syncSecret(ctx context.Context) (*bundle, error) {
	secrets := b.cfg.Secrets.Secrets(b.cfg.Namespace)
	ref := klog.KRef(b.cfg.Namespace, b.cfg.Name)
	for range maxWrites {
		now := b.cfg.Clock.Now()
		s, err := secrets.Get(ctx, b.cfg.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			next, err := newBundle(now, b.dnsNames)
			if err != nil {
				return nil, err
			}
			_, err = secrets.Create(ctx, b.secretFor(next), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				klog.V(2).InfoS("Another writer created the serving-certificate Secret first; adopting it", "secret", ref)
				continue
			}
			if err != nil {
				return nil, b.secretErr("creating", "create", err)
			}
			klog.InfoS("Created a CA and a serving certificate", "secret", ref, "dnsNames", b.dnsNames, "notAfter", next.cert.NotAfter.UTC().Format(time.RFC3339))
			return next, nil
		}
		if err != nil {
			return nil, b.secretErr("reading", "get", err)
		}
		if _, ok := s.Annotations[AnnotationOwner]; !ok {
			return nil, fmt.Errorf("secret %s exists but %w (it has no annotation %s), so it is left alone: "+
				"delete it, name another Secret with --tls-bootstrap-secret, or serve its certificate with --tls-cert-file and --tls-private-key-file", ref, errNotOurs, AnnotationOwner)
		}
		current, reason := b.judge(s, now)
		if reason == "" {
			return current, nil
		}
		next, err := renewed(now, current, b.dnsNames)
		if err != nil {
			return nil, err
		}
		s = s.DeepCopy()
		s.Data = next.data()
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			klog.V(2).InfoS("Another writer changed the serving-certificate Secret first; reading it again", "secret", ref)
			continue
		}
		if err != nil {
			return nil, b.secretErr("updating", "update", err)
		}
		klog.InfoS("Replaced the serving certificate", "secret", ref, "reason", reason, "newCA", current == nil || current.ca != next.ca,
			"notAfter", next.cert.NotAfter.UTC().Format(time.RFC3339))
		return next, nil
	}
	return nil, fmt.Errorf("secret %s changed under each of %d writes: another writer keeps replacing it (two Deployments with different --tls-bootstrap-service sharing it?)", ref, maxWrites)
}

// judge reads a Secret of ours and says why its serving certificate must be
// replaced ("" when it need not). The bundle it returns is nil when not even
// the CA can be read, and holds only the CA when the serving certificate
// cannot be.
func (b *Bootstrapper) judge(s *corev1.Secret, now time.Time) (*bundle, string) {
	current, err := parseBundle(s.Data)
	if err == nil {
		if reason := current.renewReason(now, b.dnsNames); reason != "" {
			return current, "the serving certificate must be renewed: " + reason
		}
		return current, ""
	}
	reason := "its content cannot be used (" + err.Error() + ")"
	ca, caErr := parseCA(s.Data)
	if caErr != nil {
		reason += "; a new CA replaces it"
		ca = nil
	}
	klog.ErrorS(err, "The serving-certificate Secret is damaged; replacing its content", "secret", klog.KObj(s))
	return ca, reason
}

// secretFor returns a new Secret of ours holding bn.
func (b *Bootstrapper) secretFor(bn *bundle) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        b.cfg.Name,
			Namespace:   b.cfg.Namespace,
			Annotations: map[string]string{AnnotationOwner: "metrics-server"},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "metrics-server"},
		},
		Type: corev1.SecretTypeTLS,
		Data: bn.data(),
	}
}

// secretErr wraps an error of the Secret's API call; a Forbidden one names
// the RBAC rule that is missing.
func (b *Bootstrapper) secretErr(doing, verb string, err error) error {
	ref := b.cfg.Namespace + "/" + b.cfg.Name
	if apierrors.IsForbidden(err) {
		rule := fmt.Sprintf(`{apiGroups: [""], resources: ["secrets"], verbs: ["%s"], resourceNames: ["%s"]}`, verb, b.cfg.Name)
		if verb == "create" {
			// The API cannot restrict create to a name.
			rule = `{apiGroups: [""], resources: ["secrets"], verbs: ["create"]}`
		}
		return fmt.Errorf("%s Secret %s is forbidden: add the rule %s to a Role in namespace %s bound to the server's ServiceAccount: %w",
			doing, ref, rule, b.cfg.Namespace, err)
	}
	return fmt.Errorf("%s Secret %s: %w", doing, ref, err)
}
