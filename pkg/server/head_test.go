package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// getOnly stands in for the generic server's discovery routes: GET answers
// a body, any other method 405, as go-restful does for a GET-only route.
func getOnly() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte("405: Method Not Allowed"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"kind":"APIResourceList"}`))
	})
}

func TestWithHeadDiscovery(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{"HEAD", "/apis/metrics.k8s.io/v1beta1", 200, ""},
		{"HEAD", "/apis/metrics.k8s.io/v1", 200, ""},
		{"HEAD", "/apis/metrics.k8s.io/v1beta1/", 200, ""},
		{"HEAD", "/apis/metrics.k8s.io", 200, ""},
		{"GET", "/apis/metrics.k8s.io/v1beta1", 200, `{"kind":"APIResourceList"}`},
		// Anything but the discovery documents is left alone.
		{"HEAD", "/apis/metrics.k8s.io/v1beta1/nodes", 405, "405: Method Not Allowed"},
		{"HEAD", "/apis/metrics.k8s.io/v1beta1/namespaces/a/pods", 405, "405: Method Not Allowed"},
		{"HEAD", "/apis/metrics.k8s.io.evil/v1", 405, "405: Method Not Allowed"},
		{"HEAD", "/apis/other.k8s.io/v1", 405, "405: Method Not Allowed"},
		{"HEAD", "/apis", 405, "405: Method Not Allowed"},
		{"POST", "/apis/metrics.k8s.io/v1beta1", 405, "405: Method Not Allowed"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			withHeadDiscovery(getOnly()).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantCode {
				t.Errorf("status %d, want %d", rec.Code, tc.wantCode)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
			if tc.wantCode == 200 && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q, want the GET's application/json", rec.Header().Get("Content-Type"))
			}
		})
	}
}
