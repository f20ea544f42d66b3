package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

func TestDoctorUsageErrorsExit2(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A valid kubeconfig of a cluster nobody serves: usage is refused
	// before it is ever dialled.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown output", []string{"doctor", "--kubeconfig", kubeconfig, "-o", "yaml"}, `--output="yaml": use table or json`},
		{"unknown flag", []string{"doctor", "--kubelet-insecure-tls"}, "unknown flag: --kubelet-insecure-tls; see metrics-server doctor --help"},
		{"stray argument", []string{"doctor", "nodes"}, `unexpected arguments ["nodes"]: doctor takes only flags`},
		{"missing kubeconfig", []string{"doctor", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, "loading the kubeconfig"},
		{"unknown context", []string{"doctor", "--kubeconfig", kubeconfig, "--context", "prod"}, `--context "prod"): context "prod" does not exist`},
		{"service account without namespace", []string{"doctor", "--kubeconfig", kubeconfig, "--service-account", "metrics-server"}, "give namespace/name"},
		{"zero timeout", []string{"doctor", "--kubeconfig", kubeconfig, "--timeout", "0s"}, "--timeout=0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := NewCommand(context.Background(), &out)
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&errb)
			if code := Run(cmd); code != 2 {
				t.Errorf("exit status %d, want 2; stderr %q", code, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q, want it to contain %q", errb.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed findings on a usage error: %q", out.String())
			}
		})
	}
}

func TestDoctorUnreachableClusterExits1(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// Port 1 on loopback: nothing listens, the dial is refused at once.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd := NewCommand(context.Background(), &out)
	cmd.SetArgs([]string{"doctor", "--kubeconfig", kubeconfig, "-o", "json", "--timeout", "20s"})
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	if code := Run(cmd); code != 1 {
		t.Fatalf("exit status %d, want 1; stderr %q", code, errb.String())
	}
	var got struct {
		Findings []doctor.Finding `json:"findings"`
		Failed   bool             `json:"failed"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if !got.Failed || len(got.Findings) != 1 || got.Findings[0].Check != "kube-apiserver" || !strings.Contains(got.Findings[0].Detail, "connection refused") {
		t.Errorf("findings %+v, want one failed kube-apiserver finding naming the refused connection", got)
	}
}

func TestDoctorReportExitStatus(t *testing.T) {
	ok := doctor.Finding{Check: "apiservice", Target: "v1beta1.metrics.k8s.io", Status: doctor.StatusOK, Message: "Available"}
	warn := doctor.Finding{Check: "apiservice-tls", Target: "v1beta1.metrics.k8s.io", Status: doctor.StatusWarn, Message: "no caBundle"}
	fail := doctor.Finding{Check: "rbac", Target: "serviceaccount/kube-system/metrics-server", Status: doctor.StatusFail, Message: "may not get nodes/stats"}
	tests := []struct {
		name     string
		findings []doctor.Finding
		want     int // 0: no error
	}{
		{"all ok", []doctor.Finding{ok}, 0},
		{"warnings only", []doctor.Finding{ok, warn}, 0},
		{"a failure", []doctor.Finding{ok, warn, fail}, 1},
	}
	for _, tt := range tests {
		for _, format := range []string{"table", "json"} {
			t.Run(tt.name+" "+format, func(t *testing.T) {
				var out bytes.Buffer
				o := doctorOptions{output: format}
				err := o.report(&out, tt.findings)
				code := 0
				var exit *ExitError
				if errors.As(err, &exit) {
					code = exit.Code
					if exit.Err != nil {
						t.Errorf("a failed check carries error %v; the table already says why", exit.Err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tt.want {
					t.Errorf("exit status %d, want %d", code, tt.want)
				}
				for _, f := range tt.findings {
					if !strings.Contains(out.String(), f.Message) {
						t.Errorf("output lacks %q:\n%s", f.Message, out.String())
					}
				}
			})
		}
	}
}

// TestRootHelpListsDoctor: the server's --help, which prints its own flag
// sections, names the doctor so operators find it.
func TestRootHelpListsDoctor(t *testing.T) {
	out := runRoot(t, "--help")
	want := regexp.MustCompile(`\nCommands:\n(  .*\n)*  doctor +Check why the metrics API does not work, and say how to fix it\n`)
	if !want.MatchString(out) {
		t.Errorf("--help lacks %q:\n%s", want, out)
	}
}
