package certbootstrap

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationContentHash records, on every write of the bootstrap, the
// SHA-256 of the content it wrote (contentHash): content that no longer
// matches it was changed by someone else.
const AnnotationContentHash = "kubemetrics.io/tls-bootstrap-content-sha256"

// FieldManager is the field manager of the bootstrap's writes.
const FieldManager = "metrics-server-tls-bootstrap"

// legacyFieldManager is the field manager the kube-apiserver gave the
// writes of earlier versions, which named none: the binary's name.
const legacyFieldManager = "metrics-server"

// certManagerPrefix starts every annotation cert-manager puts on the
// Secrets it issues (cert-manager.io/certificate-name, issuer-name, ...).
const certManagerPrefix = "cert-manager.io/"

// contentKeys are the Secret's keys the bootstrap writes, in the order
// contentHash takes them.
var contentKeys = [...]string{KeyCA, KeyCAKey, KeyCert, KeyKey}

// contentHash is the hex SHA-256 of the values of contentKeys in data, each
// preceded by its key and its length, so that no two contents share it.
func contentHash(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range contentKeys {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(data[k])))
		h.Write([]byte(k))
		h.Write(n[:])
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// claim is why a Secret carrying AnnotationOwner is ours to write.
type claim int

const (
	// claimShell: none of our keys holds content (the Secret the manifests
	// ship, or one an operator emptied): ours to fill.
	claimShell claim = iota
	// claimHash: the content is what the bootstrap last wrote.
	claimHash
	// claimLegacy: no hash recorded (written by an earlier version), and
	// the content is a bundle only the bootstrap makes.
	claimLegacy
)

// claimOf says why s, which carries AnnotationOwner, is ours to write, or
// why not. The annotation alone proves nothing: another issuer that takes
// the Secret over (cert-manager's server-side apply) keeps it. So s is
// ours only when it bears no mark of another issuer (a cert-manager.io/
// annotation, another field manager owning a data key that holds content)
// and its content is explained: empty, or what we last wrote, or (no hash
// recorded) a bundle we could have made.
func claimOf(s *corev1.Secret) (claim, error) {
	for _, k := range slices.Sorted(maps.Keys(s.Annotations)) {
		if strings.HasPrefix(k, certManagerPrefix) {
			return 0, fmt.Errorf("another issuer has taken it over (it carries the annotation %s)", k)
		}
	}
	if manager, key := foreignDataWriter(s); manager != "" {
		return 0, fmt.Errorf("another issuer has taken it over (field manager %q writes its key %s)", manager, key)
	}
	if !slices.ContainsFunc(contentKeys[:], func(k string) bool { return len(s.Data[k]) > 0 }) {
		return claimShell, nil
	}
	if want, ok := s.Annotations[AnnotationContentHash]; ok {
		if contentHash(s.Data) != want {
			return 0, fmt.Errorf("its content is not what the bootstrap last wrote (someone changed it: it does not match the annotation %s)", AnnotationContentHash)
		}
		return claimHash, nil
	}
	if err := madeByUs(s.Data); err != nil {
		return 0, fmt.Errorf("its content was not made by the bootstrap (and has no annotation %s): %w", AnnotationContentHash, err)
	}
	return claimLegacy, nil
}

// madeByUs checks that data is a bundle the bootstrap makes: a self-signed
// CA named caCNStart..., the key of that CA, and a serving certificate it
// signed with its key.
func madeByUs(data map[string][]byte) error {
	b, err := parseBundle(data)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(b.ca.Subject.CommonName, caCNStart) {
		return fmt.Errorf("its CA is %q, not one the bootstrap makes (%s...)", b.ca.Subject.CommonName, caCNStart)
	}
	if err := b.ca.CheckSignatureFrom(b.ca); err != nil {
		return fmt.Errorf("its CA %q is not self-signed: %w", b.ca.Subject.CommonName, err)
	}
	if err := b.cert.CheckSignatureFrom(b.ca); err != nil {
		return fmt.Errorf("its serving certificate is not signed by its CA: %w", err)
	}
	return nil
}

// foreignDataWriter returns a field manager, other than the bootstrap's
// (now or in earlier versions), that owns a data key of s holding content,
// and that key; "" when there is none. A manager owning only emptied keys
// (an operator resetting the Secret) is none.
func foreignDataWriter(s *corev1.Secret) (manager, key string) {
	for _, mf := range s.ManagedFields {
		if mf.Manager == FieldManager || mf.Manager == legacyFieldManager || mf.FieldsV1 == nil {
			continue
		}
		for _, k := range dataKeys(mf.FieldsV1.Raw) {
			if len(s.Data[k]) > 0 {
				return mf.Manager, k
			}
		}
	}
	return "", ""
}

// dataKeys returns the keys of f:data in a managedFields entry's fieldsV1
// (sorted; none when it cannot be read).
func dataKeys(fieldsV1 []byte) []string {
	var fields struct {
		Data map[string]json.RawMessage `json:"f:data"`
	}
	if err := json.NewDecoder(bytes.NewReader(fieldsV1)).Decode(&fields); err != nil {
		return nil
	}
	var keys []string
	for k := range fields.Data {
		if name, ok := strings.CutPrefix(k, "f:"); ok {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}
