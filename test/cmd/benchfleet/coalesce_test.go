package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fakeReviewer answers reviews once release is closed and counts what
// reached it, by path.
type fakeReviewer struct {
	release chan struct{}
	mu      sync.Mutex
	calls   map[string]int
}

func (f *fakeReviewer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls[r.URL.Path]++
	f.mu.Unlock()
	<-f.release
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	switch {
	case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
		_ = json.NewEncoder(w).Encode(authenticationv1.TokenReview{Status: authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "ms"}}})
	case strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
		_ = json.NewEncoder(w).Encode(authorizationv1.SubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}})
	default:
		_ = json.NewEncoder(w).Encode(map[string]string{"kind": "Status"})
	}
}

func (f *fakeReviewer) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

// Concurrent identical reviews reach the kube-apiserver once, and every
// caller gets the answer; SubjectAccessReviews differing only in the
// node's name count as identical (the fleet's cache key), a different
// subresource or token does not.
func TestReviewCoalescer(t *testing.T) {
	f := &fakeReviewer{release: make(chan struct{}), calls: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(f.release) }) }
	defer release() // before srv.Close, which waits for the handlers
	var rc *reviewCoalescer
	cfg := &rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"}, QPS: -1,
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper { rc = newReviewCoalescer(rt); return rc }}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 10
	var wg sync.WaitGroup
	var authenticated, allowed atomic.Int32
	tr := func(token string) {
		defer wg.Done()
		r, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err == nil && r.Status.Authenticated {
			authenticated.Add(1)
		}
	}
	sar := func(sub, node string) {
		defer wg.Done()
		r, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "ms", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: sub, Name: node}}}, metav1.CreateOptions{})
		if err == nil && r.Status.Allowed {
			allowed.Add(1)
		}
	}
	for i := range n {
		wg.Add(3)
		go tr("token-a")
		go sar("metrics", "node-"+string(rune('a'+i)))
		go sar("stats", "node-"+string(rune('a'+i)))
	}
	wg.Add(1)
	go tr("token-b")
	// Release the answers once every caller is in: the one sent and
	// n-1 waiting, for each of three keys, plus token-b.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc.mu.Lock()
		waiters, keys := 0, len(rc.inflight)
		for _, c := range rc.inflight {
			waiters += c.waiters
		}
		rc.mu.Unlock()
		if keys == 4 && waiters == 3*(n-1) {
			break
		}
		if time.Now().After(deadline) {
			release()
			t.Fatalf("callers never all arrived: %d keys, %d waiting", keys, waiters)
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	wg.Wait()
	if got, want := authenticated.Load(), int32(n+1); got != want {
		t.Errorf("%d TokenReview callers got an authenticated answer, want %d", got, want)
	}
	if got, want := allowed.Load(), int32(2*n); got != want {
		t.Errorf("%d SubjectAccessReview callers got an allowed answer, want %d", got, want)
	}
	if got := f.count("/apis/authentication.k8s.io/v1/tokenreviews"); got != 2 {
		t.Errorf("%d TokenReviews reached the server, want 2 (one per token)", got)
	}
	if got := f.count("/apis/authorization.k8s.io/v1/subjectaccessreviews"); got != 2 {
		t.Errorf("%d SubjectAccessReviews reached the server, want 2 (one per subresource)", got)
	}
	// Once answered, a review is sent again: the coalescer is no cache.
	wg.Add(1)
	tr("token-a")
	if got := f.count("/apis/authentication.k8s.io/v1/tokenreviews"); got != 3 {
		t.Errorf("after the burst, a TokenReview reached the server %d times in all, want 3", got)
	}
	// Other requests pass through untouched.
	if _, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil || f.count("/api/v1/nodes") != 1 {
		t.Errorf("a node list: %v, reached the server %d times, want once (and a decode error from the fake)", err, f.count("/api/v1/nodes"))
	}
}
