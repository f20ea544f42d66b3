// Package certbootstrap gives the metrics server a serving certificate that
// the kube-apiserver can verify, without cert-manager. It creates (or
// reuses) a CA and a serving certificate in one Secret, writes them into the
// certificate directory that the generic API server reloads from, renews the
// serving certificate before it expires, and keeps the caBundle of the
// metrics APIServices equal to the CA.
//
// Two replicas converge on one Secret: every write is a create or an update
// at the read resourceVersion, and a lost race (AlreadyExists, Conflict)
// re-reads and adopts what the winner wrote.
//
// It knows nothing of the metrics API, of flags, or of how the files it
// writes are served.
package certbootstrap
