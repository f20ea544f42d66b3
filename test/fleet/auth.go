package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// authCache checks scrapes as a kubelet with webhook authentication and
// authorization does: TokenReview of the bearer token, then a
// SubjectAccessReview for get on nodes/stats or nodes/metrics. Answers are
// cached for a minute, as the kubelet caches them, and concurrent misses of
// one key wait for one review, as the kubelet's cached token authenticator
// does: without that, a server starting many scrapes at once when the
// answer expired caused a burst of reviews no real kubelet sends.
type authCache struct {
	client   kubernetes.Interface
	mu       sync.Mutex
	seen     map[string]authAnswer
	inflight map[string]chan struct{}
}

type authAnswer struct {
	status int
	err    error
	at     time.Time
}

func newAuthCache(c kubernetes.Interface) *authCache {
	return &authCache{client: c, seen: map[string]authAnswer{}, inflight: map[string]chan struct{}{}}
}

// check returns 0 when allowed, else the HTTP status to answer.
func (a *authCache) check(ctx context.Context, authz, subresource, node string) (int, error) {
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || token == "" {
		return 401, fmt.Errorf("no bearer token")
	}
	key := token + "\x00" + subresource
	// Bounded: a waiter loops again only when the review it waited for
	// ended, and the next pass finds its fresh answer or sends its own.
	for attempt := 0; ; attempt++ {
		a.mu.Lock()
		ans, hit := a.seen[key]
		if hit && time.Since(ans.at) < time.Minute {
			a.mu.Unlock()
			return ans.status, ans.err
		}
		wait, busy := a.inflight[key]
		if !busy || attempt > 0 {
			done := make(chan struct{})
			a.inflight[key] = done
			a.mu.Unlock()
			status, err := a.review(ctx, token, subresource, node)
			a.mu.Lock()
			a.seen[key] = authAnswer{status: status, err: err, at: time.Now()}
			delete(a.inflight, key)
			a.mu.Unlock()
			close(done)
			return status, err
		}
		a.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return 500, ctx.Err()
		}
	}
}

func (a *authCache) review(ctx context.Context, token, subresource, node string) (int, error) {
	tr, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return 500, err
	}
	if !tr.Status.Authenticated {
		return 401, fmt.Errorf("token not authenticated: %s", tr.Status.Error)
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.Username, Groups: u.Groups, UID: u.UID, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: subresource, Name: node},
	}}, metav1.CreateOptions{})
	if err != nil {
		return 500, err
	}
	if !sar.Status.Allowed {
		return 403, fmt.Errorf("Forbidden (user=%s, verb=get, resource=nodes, subresource=%s)", u.Username, subresource)
	}
	return 0, nil
}
