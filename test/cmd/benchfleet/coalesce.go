package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// reviewCoalescer sits in the fleet's client and sends one TokenReview or
// SubjectAccessReview for all the identical ones asked at the same time;
// each asker gets a copy of the one answer.
//
// Why: the simulated kubelets share one answer cache, keyed by token and
// subresource (not node), without coalescing of misses. When it expires,
// every scrape arriving before the first new answer sends its own pair of
// reviews: a server whose scrapes start in bursts (ours starts the nodes of
// a 250 ms step together) caused about 60 pairs a minute at 1,000 nodes,
// upstream's random start times about one. Real kubelets have one cache
// each and see one scrape at a time, so no server causes such bursts of
// reviews there. Coalescing makes the shared cache behave as it was meant
// to (one pair per key and minute) without touching the fleet: a
// SubjectAccessReview's key leaves out the node's name, as the fleet's
// cache does.
type reviewCoalescer struct {
	next http.RoundTripper

	mu       sync.Mutex
	inflight map[string]*reviewCall
}

type reviewCall struct {
	done    chan struct{}
	waiters int // callers waiting for this answer besides the sender; under mu
	status  int
	header  http.Header
	body    []byte
	err     error
}

func newReviewCoalescer(next http.RoundTripper) *reviewCoalescer {
	return &reviewCoalescer{next: next, inflight: map[string]*reviewCall{}}
}

func (c *reviewCoalescer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil ||
		!(strings.HasSuffix(req.URL.Path, "/tokenreviews") || strings.HasSuffix(req.URL.Path, "/subjectaccessreviews")) {
		return c.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	key, err := reviewKey(body)
	if err != nil {
		// Not a review we understand: send it as it is.
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		return c.next.RoundTrip(r)
	}
	key = req.URL.Path + "\x00" + key
	c.mu.Lock()
	call, waiting := c.inflight[key]
	if waiting {
		call.waiters++
	} else {
		call = &reviewCall{done: make(chan struct{})}
		c.inflight[key] = call
	}
	c.mu.Unlock()
	if waiting {
		select {
		case <-call.done:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	} else {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := c.next.RoundTrip(r)
		if err == nil {
			call.status, call.header = resp.StatusCode, resp.Header.Clone()
			call.body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		call.err = err
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(call.done)
	}
	if call.err != nil {
		return nil, call.err
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", call.status, http.StatusText(call.status)), StatusCode: call.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: call.header.Clone(), Body: io.NopCloser(bytes.NewReader(call.body)),
		ContentLength: int64(len(call.body)), Request: req,
	}, nil
}

// reviewKey is what makes two reviews the same for the fleet's cache: the
// token of a TokenReview; the user, verb and resource of a
// SubjectAccessReview, without the resource's name.
func reviewKey(body []byte) (string, error) {
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return "", err
	}
	switch r := obj.(type) {
	case *authenticationv1.TokenReview:
		return "token\x00" + r.Spec.Token + "\x00" + strings.Join(r.Spec.Audiences, ","), nil
	case *authorizationv1.SubjectAccessReview:
		a := r.Spec.ResourceAttributes
		if a == nil || r.Spec.NonResourceAttributes != nil {
			return "", fmt.Errorf("not a resource SubjectAccessReview")
		}
		return strings.Join([]string{"sar", r.Spec.User, r.Spec.UID, strings.Join(r.Spec.Groups, ","), fmt.Sprint(r.Spec.Extra),
			a.Verb, a.Group, a.Version, a.Resource, a.Subresource, a.Namespace}, "\x00"), nil
	}
	return "", fmt.Errorf("%T is not a review", obj)
}
