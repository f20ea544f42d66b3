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

// AnnotationOwner marks a Secret the bootstrap may write. A Secret without
// it is never written: it belongs to someone else (cert-manager, an
// operator). The annotation alone does not make a Secret ours: see claimOf.
const AnnotationOwner = "kubemetrics.io/tls-bootstrap"

// errNotOurs is the error of a Secret the bootstrap must not write: not
// marked as ours, taken over by another issuer, or holding content it
// cannot explain.
var errNotOurs = errors.New("is not the serving-certificate bootstrap's to write")

// maxWrites bounds the writes of one sync that lose a race to another
// writer (AlreadyExists, Conflict) before it gives up until the next.
const maxWrites = 5

// syncSecret makes the Secret hold a CA and a serving certificate that need
// no renewal at now and returns them: it creates the Secret when absent,
// fills it when it is the empty one the manifests ship, renews the serving
// certificate (and the CA when it would expire first) when due, and
// otherwise adopts what is there. A write that loses a race re-reads and
// adopts the winner's. A Secret that is not ours (claimOf) is an error
// wrapping errNotOurs and is left alone.
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
			_, err = secrets.Create(ctx, b.secretFor(next), metav1.CreateOptions{FieldManager: FieldManager})
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
		b.secretUID = s.UID
		if _, ok := s.Annotations[AnnotationOwner]; !ok {
			return nil, fmt.Errorf("secret %s exists but %w (it has no annotation %s), so it is left alone: "+
				"delete it, name another Secret with --tls-bootstrap-secret, or serve its certificate with --tls-cert-file and --tls-private-key-file", ref, errNotOurs, AnnotationOwner)
		}
		cl, err := claimOf(s)
		if err != nil {
			return nil, b.notOursErr(err)
		}
		var current *bundle
		reason := "it is the empty Secret shipped for the bootstrap"
		if cl != claimShell {
			if current, err = parseBundle(s.Data); err != nil {
				return nil, b.notOursErr(fmt.Errorf("its content cannot be read: %w", err))
			}
			if cl == claimLegacy && !b.legacyLogged {
				klog.InfoS("Adopting the serving-certificate Secret written by an earlier version; its content hash is recorded at the next write",
					"secret", ref, "annotation", AnnotationContentHash)
				b.legacyLogged = true
			}
			if reason = current.renewReason(now, b.dnsNames); reason == "" {
				return current, nil
			}
			reason = "the serving certificate must be renewed: " + reason
		}
		next, err := renewed(now, current, b.dnsNames)
		if err != nil {
			return nil, err
		}
		s = s.DeepCopy()
		s.Data = next.data()
		s.Annotations[AnnotationContentHash] = contentHash(s.Data)
		// The type is left as it is (Opaque or kubernetes.io/tls): it is
		// immutable, and both hold our keys.
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			klog.V(2).InfoS("Another writer changed the serving-certificate Secret first; reading it again", "secret", ref)
			continue
		}
		if err != nil {
			return nil, b.secretErr("updating", "update", err)
		}
		if cl == claimShell {
			klog.InfoS("Filled the empty serving-certificate Secret with a new CA and serving certificate", "secret", ref,
				"dnsNames", b.dnsNames, "notAfter", next.cert.NotAfter.UTC().Format(time.RFC3339))
		} else {
			klog.InfoS("Replaced the serving certificate", "secret", ref, "reason", reason, "newCA", current.ca != next.ca,
				"notAfter", next.cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return next, nil
	}
	return nil, fmt.Errorf("secret %s changed under each of %d writes: another writer keeps replacing it (two Deployments with different --tls-bootstrap-service sharing it?)", ref, maxWrites)
}

// notOursErr wraps why a Secret carrying AnnotationOwner is not ours to
// write into an error that says what the operator can do.
func (b *Bootstrapper) notOursErr(why error) error {
	ns, name := b.cfg.Namespace, b.cfg.Name
	return fmt.Errorf("secret %s/%s %w: %w; it is left alone, the server keeps serving its last certificate and leaves the APIServices' caBundle as it is. "+
		"If another issuer owns it now, serve its certificate with --tls-cert-file and --tls-private-key-file instead of --tls-bootstrap-secret; "+
		"to let the bootstrap make a new CA and certificate in it, remove any other issuer and its annotations and empty its data: "+
		`kubectl -n %s patch secret %s --type=merge -p '{"data":{"tls.crt":"","tls.key":"","ca.crt":"","ca.key":""}}'`,
		ns, name, errNotOurs, why, ns, name)
}

// secretFor returns a new Secret of ours holding bn. It is Opaque, like the
// one the manifests ship.
func (b *Bootstrapper) secretFor(bn *bundle) *corev1.Secret {
	data := bn.data()
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        b.cfg.Name,
			Namespace:   b.cfg.Namespace,
			Annotations: map[string]string{AnnotationOwner: "metrics-server", AnnotationContentHash: contentHash(data)},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "metrics-server"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// secretErr wraps an error of the Secret's API call; a Forbidden one names
// the RBAC rule that is missing, or, for create, the Secret to make: the
// server is never to be granted create on Secrets, with which its identity
// could mint a bootstrap token.
func (b *Bootstrapper) secretErr(doing, verb string, err error) error {
	ns, name := b.cfg.Namespace, b.cfg.Name
	if apierrors.IsForbidden(err) && verb == "create" {
		return fmt.Errorf("creating Secret %s/%s is forbidden, as it should be (the right to create Secrets would let the server's identity mint a bootstrap token): "+
			"create the empty Secret the bootstrap fills, as the manifests ship it: kubectl -n %s create secret generic %s && kubectl -n %s annotate secret %s %s=metrics-server; "+
			"the server needs get and update on that one Secret: %w",
			ns, name, ns, name, ns, name, AnnotationOwner, err)
	}
	if apierrors.IsForbidden(err) {
		rule := fmt.Sprintf(`{apiGroups: [""], resources: ["secrets"], verbs: ["%s"], resourceNames: ["%s"]}`, verb, name)
		return fmt.Errorf("%s Secret %s/%s is forbidden: add the rule %s to a Role in namespace %s bound to the server's ServiceAccount: %w",
			doing, ns, name, rule, ns, err)
	}
	return fmt.Errorf("%s Secret %s/%s: %w", doing, ns, name, err)
}
