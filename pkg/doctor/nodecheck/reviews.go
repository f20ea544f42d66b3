package nodecheck

import (
	"context"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// reviews asks the API server, by SubjectAccessReview, whether the
// server's ServiceAccount may get nodes/<subresource>, once per
// subresource: RBAC rules for nodes rarely name one node, so the first
// node's answer stands for all (a run asks at most two reviews).
type reviews struct {
	client kubernetes.Interface
	mu     sync.Mutex
	seen   map[string]review
}

type review struct {
	allowed bool
	err     error
}

func newReviews(c kubernetes.Interface) *reviews {
	return &reviews{client: c, seen: map[string]review{}}
}

// allowed reports whether c's user may get nodes/<subresource> of node;
// an error when c are the operator's own credentials (no user to review)
// or the review could not be made.
func (r *reviews) allowed(ctx context.Context, c creds, subresource, node string) (bool, error) {
	if c.operator() {
		return false, errOperator
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.seen[subresource]; ok {
		return v.allowed, v.err
	}
	sar, err := r.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: c.user, Groups: c.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: subresource, Name: node},
	}}, metav1.CreateOptions{})
	v := review{err: err}
	if err == nil {
		v.allowed = sar.Status.Allowed
	}
	r.seen[subresource] = v
	return v.allowed, v.err
}
