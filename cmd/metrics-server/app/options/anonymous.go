package options

import (
	"net/http"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// probePaths are the paths a request without credentials may reach: the
// kubelet's liveness and readiness probes send none.
var probePaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true}

// anonymousOnlyForProbes wraps the delegated authenticator, which admits
// any request that proves nothing as system:anonymous (k8s.io/apiserver's
// delegating options always enable anonymous authentication and ignore
// their Anonymous conditions). Here such a request is admitted only to the
// probe paths; elsewhere it is refused as unauthenticated (401) instead of
// being left to authorization (403). Forged X-Remote-User headers without
// a trusted front-proxy certificate prove nothing, so they get 401.
type anonymousOnlyForProbes struct {
	authenticator.Request
}

func (a anonymousOnlyForProbes) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	resp, ok, err := a.Request.AuthenticateRequest(req)
	if ok && resp != nil && resp.User != nil && resp.User.GetName() == user.Anonymous && !probePaths[req.URL.Path] {
		return nil, false, nil
	}
	return resp, ok, err
}
