package doctor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var reportFindings = []Finding{
	{Check: "apiservice", Target: "v1beta1.metrics.k8s.io", Status: StatusOK, Message: "APIService v1beta1.metrics.k8s.io is Available"},
	{Check: "rbac", Target: "serviceaccount/kube-system/metrics-server", Status: StatusFail,
		Message: "service account kube-system/metrics-server may not get nodes/stats",
		Fix:     "kubectl create clusterrolebinding system:metrics-server --clusterrole=system:metrics-server --serviceaccount=kube-system:metrics-server",
		Detail:  "first line\nsecond line"},
	{Check: "aggregation-layer", Target: "configmap/kube-system/extension-apiserver-authentication", Status: StatusWarn, Message: "no allowed names"},
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, reportFindings); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := []string{
		"CHECK              TARGET                                                    STATUS  MESSAGE",
		"apiservice         v1beta1.metrics.k8s.io                                    OK      APIService v1beta1.metrics.k8s.io is Available",
		"rbac               serviceaccount/kube-system/metrics-server                 FAIL    service account kube-system/metrics-server may not get nodes/stats",
		"                                                                                     fix: kubectl create clusterrolebinding system:metrics-server --clusterrole=system:metrics-server --serviceaccount=kube-system:metrics-server",
		"                                                                                     detail: first line second line",
		"aggregation-layer  configmap/kube-system/extension-apiserver-authentication  WARN    no allowed names",
		"",
		"1 ok, 1 warn, 1 fail",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestWriteJSON(t *testing.T) {
	for _, tt := range []struct {
		name       string
		findings   []Finding
		wantFailed bool
	}{
		{"with a failure", reportFindings, true},
		{"all ok", reportFindings[:1], false},
		{"none", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJSON(&b, tt.findings); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Findings []Finding `json:"findings"`
				Failed   bool      `json:"failed"`
			}
			if err := json.Unmarshal(b.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, b.String())
			}
			want := tt.findings
			if want == nil {
				want = []Finding{}
			}
			if diff := cmp.Diff(want, got.Findings); diff != "" || got.Failed != tt.wantFailed {
				t.Errorf("failed = %v, want %v; findings (-want +got):\n%s", got.Failed, tt.wantFailed, diff)
			}
		})
	}
}

// TestWriteTableLineEnds: no line of the table ends with blanks, whether a
// cell is empty (a finding without target or message) or a kubelet's text
// ends with its newline; inner lines become one line.
func TestWriteTableLineEnds(t *testing.T) {
	findings := []Finding{
		{Check: "node-endpoint", Target: "node/worker-17", Status: StatusWarn,
			Message: "/stats/summary fails: http status 500: Internal Error: failed to get imageFs stats\n",
			Fix:     "cri-o's imageFs error: keep --kubelet-endpoint=auto, the server uses /metrics/resource\n",
			Detail:  "failed to get imageFs stats:\r\n\tunable to find data in memory cache\n\n"},
		{Check: "clock-skew", Status: StatusOK},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, findings); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for i, l := range lines {
		if strings.TrimRight(l, " \t") != l {
			t.Errorf("line %d ends with blanks: %q", i+1, l)
		}
	}
	want := []string{
		"CHECK          TARGET          STATUS  MESSAGE",
		"node-endpoint  node/worker-17  WARN    /stats/summary fails: http status 500: Internal Error: failed to get imageFs stats",
		"                                       fix: cri-o's imageFs error: keep --kubelet-endpoint=auto, the server uses /metrics/resource",
		"                                       detail: failed to get imageFs stats: unable to find data in memory cache",
		"clock-skew                     OK",
		"",
		"1 ok, 1 warn, 0 fail",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
