// Package certbootstrap gives the metrics server a serving certificate that
// the kube-apiserver can verify, without cert-manager. It fills (or
// reuses) a CA and a serving certificate in one Secret, writes them into the
// certificate directory that the generic API server reloads from, renews the
// serving certificate before it expires, and keeps the caBundle of the
// metrics APIServices equal to the CA.
//
// # The Secret
//
// The manifests ship the Secret empty (type Opaque, no data) with the
// annotation AnnotationOwner, and grant the server only get and update on
// it: the right to create Secrets would let the server's identity mint a
// bootstrap token. The bootstrap fills that empty Secret at the first start.
// It creates the Secret (type Opaque) only when it is absent and RBAC
// allows it; when RBAC refuses, the error gives the kubectl commands that
// make the empty Secret.
//
// # What is ours
//
// Our annotation alone proves nothing: another issuer that takes the Secret
// over (cert-manager writes with server-side apply) keeps it, and keeps
// ca.key. Every write of the bootstrap records the SHA-256 of the content
// it wrote (AnnotationContentHash) and names FieldManager. A Secret is ours
// to write only when it carries AnnotationOwner, bears no mark of another
// issuer (no cert-manager.io/ annotation; no field manager but ours owning
// a data key that holds content), and its content is explained: none of our
// keys holds content (the shipped Secret, or one an operator emptied to
// start again), or it is what we last wrote (the hash matches), or, with no
// hash (written by an earlier version), it is a bundle only we make (a
// self-signed metrics-server-ca@ CA, its key, a serving certificate it
// signed), adopted as is and hashed at the next write. Anything else is
// never replaced, only reported: an error line when the state changes, a
// Warning event on the Secret, and the APIServices are left alone; the
// server keeps serving its last good files. Content of ours that someone
// changed is therefore reported, not regenerated; only our own content due
// for renewal is renewed.
//
// # The APIServices
//
// An APIService's caBundle is set only when its spec.service is the Service
// the certificate is for (Config.Namespace/Config.Service) and no
// cert-manager CA-injection annotation is on it; another is left alone,
// said in a log line and a Warning event (namespace default, where events
// of cluster-scoped objects go) when its state changes. The caBundle is
// set only after a sync that read the Secret and wrote its files, and only
// to what the Secret holds then: never back to a CA this replica served
// before another replica replaced it. When the CA is replaced, ca.crt (and
// so the caBundle) holds the new CA followed by the old one, so that the
// replicas still serving a certificate of the old CA stay trusted until
// they adopt the new one at their next sync; the old CA leaves ca.crt at the
// next replacement of the CA.
//
// Two replicas converge on one Secret: every write is a create or an update
// at the read resourceVersion, and a lost race (AlreadyExists, Conflict)
// re-reads and adopts what the winner wrote.
//
// It knows nothing of the metrics API, of flags, or of how the files it
// writes are served.
package certbootstrap
