package doctor

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// apiServiceObject is an APIService as the kube-apiserver returns it;
// status "" leaves the Available condition out.
func apiServiceObject(name, status, reason, message string, spec map[string]any) *unstructured.Unstructured {
	if spec == nil {
		spec = map[string]any{
			"group": "metrics.k8s.io", "version": strings.SplitN(name, ".", 2)[0],
			"service":  map[string]any{"namespace": "kube-system", "name": "metrics-server", "port": int64(443)},
			"caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
		}
	}
	obj := map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}
	if status != "" {
		obj["status"] = map[string]any{"conditions": []any{map[string]any{
			"type": "Available", "status": status, "reason": reason, "message": message,
			"lastTransitionTime": "2026-11-30T05:12:07Z",
		}}}
	}
	return &unstructured.Unstructured{Object: obj}
}

func TestCheckAPIServices(t *testing.T) {
	refused := `failing or missing response from https://127.0.0.1:36221/apis/metrics.k8s.io/v1beta1: Get "https://127.0.0.1:36221/apis/metrics.k8s.io/v1beta1": dial tcp 127.0.0.1:36221: connect: connection refused`
	tests := []struct {
		name    string
		objects []runtime.Object
		// want is, per finding, "check target status" and a text its
		// message or fix must contain.
		want      []string
		wantTexts []string
		wantCause []CauseKind
	}{
		{
			name: "both available",
			objects: []runtime.Object{
				apiServiceObject("v1beta1.metrics.k8s.io", "True", "Passed", "all checks passed", nil),
				apiServiceObject("v1.metrics.k8s.io", "True", "Passed", "all checks passed", nil),
			},
			want:      []string{"apiservice v1beta1.metrics.k8s.io ok", "apiservice v1.metrics.k8s.io ok"},
			wantTexts: []string{"is Available (service kube-system/metrics-server)", "is Available"},
			wantCause: []CauseKind{CauseNone, CauseNone},
		},
		{
			name: "server stopped, v1 missing",
			objects: []runtime.Object{
				apiServiceObject("v1beta1.metrics.k8s.io", "False", "FailedDiscoveryCheck", refused, nil),
			},
			want:      []string{"apiservice v1beta1.metrics.k8s.io fail", "apiservice v1.metrics.k8s.io warn"},
			wantTexts: []string{"connection to service kube-system/metrics-server was refused", "kubectl falls back to v1beta1"},
			wantCause: []CauseKind{CauseConnectionRefused, CauseNone},
		},
		{
			name:      "v1beta1 missing",
			objects:   []runtime.Object{apiServiceObject("v1.metrics.k8s.io", "True", "Passed", "all checks passed", nil)},
			want:      []string{"apiservice v1beta1.metrics.k8s.io fail", "apiservice v1.metrics.k8s.io ok"},
			wantTexts: []string{"the HorizontalPodAutoscaler reads only v1beta1.metrics.k8s.io", "is Available"},
			wantCause: []CauseKind{CauseNone, CauseNone},
		},
		{
			name: "not yet checked, insecure, local",
			objects: []runtime.Object{
				apiServiceObject("v1beta1.metrics.k8s.io", "", "", "", map[string]any{
					"service":               map[string]any{"namespace": "kube-system", "name": "metrics-server"},
					"insecureSkipTLSVerify": true,
				}),
				apiServiceObject("v1.metrics.k8s.io", "True", "Local", "Local APIServices are always available", map[string]any{"group": "metrics.k8s.io"}),
			},
			want:      []string{"apiservice v1beta1.metrics.k8s.io warn", "apiservice-tls v1beta1.metrics.k8s.io warn", "apiservice v1.metrics.k8s.io fail"},
			wantTexts: []string{"has no Available condition yet", "without verifying who answers", "has no spec.service"},
			wantCause: []CauseKind{CauseUnchecked, CauseLocal},
		},
		{
			name: "no caBundle",
			objects: []runtime.Object{
				apiServiceObject("v1beta1.metrics.k8s.io", "True", "Passed", "all checks passed", map[string]any{
					"service": map[string]any{"namespace": "kube-system", "name": "metrics-server", "port": int64(443)},
				}),
			},
			want:      []string{"apiservice v1beta1.metrics.k8s.io ok", "apiservice-tls v1beta1.metrics.k8s.io warn", "apiservice v1.metrics.k8s.io warn"},
			wantTexts: []string{"is Available", "has no caBundle", "does not exist"},
			wantCause: []CauseKind{CauseNone, CauseNone},
		},
		{
			name: "cert-manager has not injected the CA",
			objects: []runtime.Object{
				withAnnotation(apiServiceObject("v1beta1.metrics.k8s.io", "False", "FailedDiscoveryCheck",
					`failing or missing response from https://10.96.14.7:443/apis/metrics.k8s.io/v1beta1: Get "https://10.96.14.7:443/apis/metrics.k8s.io/v1beta1": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
					map[string]any{"service": map[string]any{"namespace": "kube-system", "name": "metrics-server", "port": int64(443)}}),
					"cert-manager.io/inject-ca-from", "kube-system/metrics-server"),
				apiServiceObject("v1.metrics.k8s.io", "True", "Passed", "all checks passed", nil),
			},
			want:      []string{"apiservice v1beta1.metrics.k8s.io fail", "apiservice-tls v1beta1.metrics.k8s.io fail", "apiservice v1.metrics.k8s.io ok"},
			wantTexts: []string{"caBundle of APIService v1beta1.metrics.k8s.io is not the CA that signed it", "kubectl -n kube-system describe certificate metrics-server", "is Available"},
			wantCause: []CauseKind{CauseTLSUnknownCA, CauseNone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{APIServiceResource: "APIServiceList"}, tt.objects...)
			findings, states := CheckAPIServices(context.Background(), client, nil)
			if len(findings) != len(tt.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(findings), len(tt.want), findings)
			}
			for i, f := range findings {
				if got := f.Check + " " + f.Target + " " + string(f.Status); got != tt.want[i] {
					t.Errorf("finding %d = %q, want %q", i, got, tt.want[i])
				}
				if !strings.Contains(f.Message+f.Fix, tt.wantTexts[i]) {
					t.Errorf("finding %d message %q fix %q, want %q in them", i, f.Message, f.Fix, tt.wantTexts[i])
				}
			}
			for i, want := range tt.wantCause {
				if states[i].Cause.Kind != want {
					t.Errorf("state %s cause = %q, want %q", states[i].Name, states[i].Cause.Kind, want)
				}
			}
		})
	}
}

func withAnnotation(u *unstructured.Unstructured, key, value string) *unstructured.Unstructured {
	u.SetAnnotations(map[string]string{key: value})
	return u
}
