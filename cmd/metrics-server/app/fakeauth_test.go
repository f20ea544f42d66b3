package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
)

// accessRule grants one verb on a non-resource path ("/metrics", or a
// prefix ending in "*") or on a resource ("metrics.k8s.io/nodes"), as an
// RBAC rule would.
type accessRule struct {
	verb, what string
}

func (r accessRule) allows(verb, what string) bool {
	if r.verb != verb {
		return false
	}
	if prefix, ok := strings.CutSuffix(r.what, "*"); ok {
		return strings.HasPrefix(what, prefix)
	}
	return r.what == what
}

// fakeAuthAPI is the part of a kube-apiserver an aggregated server
// delegates to: TokenReview (who holds this bearer token) and
// SubjectAccessReview (may this user do this). It answers only callers
// presenting clientToken, and records every access review it is asked, so
// a test can tell as whom a request was authorized.
type fakeAuthAPI struct {
	clientToken string
	// tokens maps a bearer token to the user it authenticates.
	tokens map[string]authenticationv1.UserInfo
	// grants are each user's rules; a user without any is denied
	// everything.
	grants map[string][]accessRule

	mu      sync.Mutex
	reviews []authorizationv1.SubjectAccessReviewSpec
}

func (a *fakeAuthAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+a.clientToken {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "only reviews are served here", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		var review authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if u, ok := a.tokens[review.Spec.Token]; ok {
			review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: u, Audiences: review.Spec.Audiences}
		} else {
			review.Status = authenticationv1.TokenReviewStatus{Error: "token not known"}
		}
		// Like a kube-apiserver (pkg/registry/authentication/tokenreview),
		// the answer repeats the request, token included.
		writeJSON(w, &review)
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		var review authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.reviews = append(a.reviews, review.Spec)
		a.mu.Unlock()
		verb, what := reviewed(review.Spec)
		for _, rule := range a.grants[review.Spec.User] {
			if rule.allows(verb, what) {
				review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "granted by the test"}
				break
			}
		}
		writeJSON(w, &review)
	default:
		http.NotFound(w, r)
	}
}

// reviewed returns the verb and the path or group/resource of a review.
func reviewed(s authorizationv1.SubjectAccessReviewSpec) (verb, what string) {
	if s.NonResourceAttributes != nil {
		return s.NonResourceAttributes.Verb, s.NonResourceAttributes.Path
	}
	if s.ResourceAttributes != nil {
		return s.ResourceAttributes.Verb, s.ResourceAttributes.Group + "/" + s.ResourceAttributes.Resource
	}
	return "", ""
}

// ReviewedUsers returns every user an access review was asked for, with
// how many times.
func (a *fakeAuthAPI) ReviewedUsers() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	users := map[string]int{}
	for _, r := range a.reviews {
		users[r.User]++
	}
	return users
}

func writeJSON(w http.ResponseWriter, obj any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(obj)
}

// serve starts the fake over TLS on loopback.
func (a *fakeAuthAPI) serve() *httptest.Server {
	return httptest.NewTLSServer(a)
}
