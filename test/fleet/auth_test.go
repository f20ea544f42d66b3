package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestAuthCacheMergesConcurrentMisses: scrapes arriving together at an
// expired (or empty) cache send one TokenReview and one
// SubjectAccessReview, as a kubelet's cached authenticator does, not one
// pair each; a later miss after expiry reviews again.
func TestAuthCacheMergesConcurrentMisses(t *testing.T) {
	client := fake.NewClientset()
	var tokenReviews, accessReviews atomic.Int32
	client.PrependReactor("create", "tokenreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		tokenReviews.Add(1)
		time.Sleep(50 * time.Millisecond) // the kube-apiserver's latency
		return true, &authenticationv1.TokenReview{Status: authenticationv1.TokenReviewStatus{Authenticated: true,
			User: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:metrics-server"}}}, nil
	})
	client.PrependReactor("create", "subjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		accessReviews.Add(1)
		return true, &authorizationv1.SubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}, nil
	})
	a := newAuthCache(client)
	const scrapes = 40
	var wg sync.WaitGroup
	statuses := make([]int, scrapes)
	for i := range scrapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = a.check(context.Background(), "Bearer tok", "metrics", "node-1")
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 0 {
			t.Fatalf("scrape %d: status %d, want allowed", i, s)
		}
	}
	if got := tokenReviews.Load(); got != 1 {
		t.Errorf("%d concurrent scrapes sent %d TokenReviews, want 1", scrapes, got)
	}
	if got := accessReviews.Load(); got != 1 {
		t.Errorf("%d concurrent scrapes sent %d SubjectAccessReviews, want 1", scrapes, got)
	}
	// Expired: the next miss reviews again.
	a.mu.Lock()
	for k, v := range a.seen {
		v.at = time.Now().Add(-2 * time.Minute)
		a.seen[k] = v
	}
	a.mu.Unlock()
	if s, err := a.check(context.Background(), "Bearer tok", "metrics", "node-1"); s != 0 || err != nil {
		t.Fatalf("after expiry: status %d, %v", s, err)
	}
	if got := tokenReviews.Load(); got != 2 {
		t.Errorf("after expiry %d TokenReviews in all, want 2", got)
	}
}
