package app

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// forbiddenUser returns the user a 403 Status names ("User \"x\" cannot
// ..."), or "" when it names none.
func forbiddenUser(body string) string {
	var st metav1.Status
	msg := body
	if json.Unmarshal([]byte(body), &st) == nil && st.Message != "" {
		msg = st.Message
	}
	_, rest, ok := strings.Cut(msg, `User "`)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// forgedHeaders claim the user granted everything, in the group every
// delegating server lets through without asking.
var forgedHeaders = map[string]string{
	"X-Remote-User":         userForged,
	"X-Remote-Group":        "system:masters",
	"X-Remote-Extra-Scopes": "all",
}

// TestFrontDoorRefusesForgedIdentity calls the server directly, not
// through the kube-apiserver, with the request headers the aggregation
// layer uses and every way of presenting them short of the front proxy's
// own certificate. None may be taken as the user the headers name: a
// request is either refused as unauthenticated (401) or authorized as who
// its credentials really prove (403 naming that user), and the user only a
// forged header names is never even asked about.
func TestFrontDoorRefusesForgedIdentity(t *testing.T) {
	s := startSecureServer(t)
	rogueCA, err := pki.NewCA("rogue-front-proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	withHeaders := func(c caller, h map[string]string) caller { c.headers = h; return c }
	cases := []struct {
		name     string
		caller   caller
		wantCode int
		// wantUser is the user a 403 must name.
		wantUser string
	}{
		{"forged headers, no certificate", withHeaders(caller{}, forgedHeaders), http.StatusUnauthorized, ""},
		{"forged headers, proxy-named certificate of another CA", withHeaders(caller{cert: issue(t, s.files, "", rogueCA, pki.ProxyClientName)}, forgedHeaders), http.StatusUnauthorized, ""},
		{"forged headers, requestheader CA certificate whose CN is not allowed", withHeaders(caller{cert: issue(t, s.files, pki.FrontProxyCA, nil, "not-the-front-proxy")}, forgedHeaders), http.StatusUnauthorized, ""},
		{"forged headers, cluster CA client certificate", withHeaders(caller{cert: issue(t, s.files, pki.ClusterCA, nil, userMallory)}, forgedHeaders), http.StatusForbidden, userMallory},
		{"forged headers, valid bearer token", withHeaders(caller{token: nobodyToken}, forgedHeaders), http.StatusForbidden, userNobody},
		{"impersonation without the grant, valid bearer token", caller{token: nobodyToken, headers: map[string]string{"Impersonate-User": userForged, "Impersonate-Group": "system:masters"}}, http.StatusForbidden, userNobody},
		{"forged headers, unknown bearer token", withHeaders(caller{token: unknownToken}, forgedHeaders), http.StatusUnauthorized, ""},
		// The controls: the real front proxy is believed, for whoever it names.
		{"front proxy naming a user without grants", caller{cert: frontProxy(t, s.files), headers: map[string]string{"X-Remote-User": userBob}}, http.StatusForbidden, userBob},
		{"front proxy naming a granted user", caller{cert: frontProxy(t, s.files), headers: map[string]string{"X-Remote-User": userAlice}}, http.StatusOK, ""},
	}
	for _, path := range []string{"/apis/metrics.k8s.io/v1beta1/nodes", "/apis/metrics.k8s.io/v1/namespaces/ns1/pods", "/metrics"} {
		for _, tc := range cases {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				code, body := s.call(t, tc.caller, http.MethodGet, path, "")
				if code != tc.wantCode {
					t.Fatalf("status %d, want %d; body:\n%.500s", code, tc.wantCode, body)
				}
				if code == http.StatusForbidden {
					if got := forbiddenUser(body); got != tc.wantUser {
						t.Errorf("refused as %q, want as %q; body:\n%.500s", got, tc.wantUser, body)
					}
				}
			})
		}
	}
	reviewed := s.auth.ReviewedUsers()
	if n := reviewed[userForged]; n != 0 {
		t.Errorf("the user only forged headers name was reviewed %d times: the headers were believed", n)
	}
	if n := reviewed["system:anonymous"]; n != 0 {
		t.Errorf("an anonymous request outside the probes was reviewed %d times: it should be refused as unauthenticated", n)
	}
	for _, u := range []string{userMallory, userNobody, userBob, userAlice} {
		if reviewed[u] == 0 {
			t.Errorf("no access review for %s (reviews: %v): the table did not exercise delegated authorization", u, reviewed)
		}
	}
}

// TestDebugAndMetricsEndpointsNeedAuthorization checks that the self-metrics
// and the debug endpoints (profiles, and the handler that changes the log
// verbosity) are served only to users the kube-apiserver authorizes for
// them, while the health probes stay open to anonymous kubelets.
func TestDebugAndMetricsEndpointsNeedAuthorization(t *testing.T) {
	s := startSecureServer(t)
	verbosity := currentVerbosity()
	endpoints := []struct{ method, path, body string }{
		{http.MethodGet, "/metrics", ""},
		{http.MethodGet, "/debug/pprof/", ""},
		{http.MethodGet, "/debug/pprof/goroutine?debug=1", ""},
		{http.MethodGet, "/debug/pprof/heap", ""},
		// Setting the verbosity it already has: authorized, it changes nothing.
		{http.MethodPut, "/debug/flags/v", verbosity},
		{http.MethodGet, "/apis/metrics.k8s.io/v1/nodes", ""},
	}
	callers := []struct {
		name     string
		caller   caller
		wantCode int
		wantUser string
	}{
		{"anonymous", caller{}, http.StatusUnauthorized, ""},
		{"authenticated without the grant", caller{token: nobodyToken}, http.StatusForbidden, userNobody},
		{"unknown token", caller{token: unknownToken}, http.StatusUnauthorized, ""},
		{"granted", caller{token: aliceToken}, http.StatusOK, ""},
	}
	for _, e := range endpoints {
		for _, c := range callers {
			t.Run(e.method+" "+e.path+"/"+c.name, func(t *testing.T) {
				code, body := s.call(t, c.caller, e.method, e.path, e.body)
				if code != c.wantCode {
					t.Fatalf("status %d, want %d; body:\n%.500s", code, c.wantCode, body)
				}
				if code == http.StatusForbidden {
					if got := forbiddenUser(body); got != c.wantUser {
						t.Errorf("refused as %q, want as %q", got, c.wantUser)
					}
				}
			})
		}
	}
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		t.Run("anonymous probe "+path, func(t *testing.T) {
			if code, body := s.call(t, caller{}, http.MethodGet, path, ""); code != http.StatusOK {
				t.Errorf("status %d, want 200 (kubelet probes carry no credentials); body:\n%.500s", code, body)
			}
		})
	}
}

// currentVerbosity is klog's -v, as /debug/flags/v takes it.
func currentVerbosity() string {
	for v := 10; v > 0; v-- {
		if klog.V(klog.Level(v)).Enabled() {
			return strconv.Itoa(v)
		}
	}
	return "0"
}
