package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBadFlagsFailNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unparsable duration", []string{"--metric-resolution=soon"}, "--metric-resolution"},
		{"unparsable int", []string{"--kubelet-port=http"}, "--kubelet-port"},
		{"unknown flag", []string{"--kubelet-prefered-address-types=InternalIP"}, "kubelet-prefered-address-types"},
		{"valid syntax, invalid value", []string{"--metric-resolution=1s", "--kubelet-request-timeout=500ms"}, "--metric-resolution"},
		{"crossed kubelet TLS flags", []string{"--kubelet-insecure-tls", "--kubelet-certificate-authority=/ca.crt"}, "--kubelet-certificate-authority"},
		{"bad endpoint", []string{"--kubelet-endpoint=both"}, "--kubelet-endpoint"},
		{"stray argument", []string{"serve"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := NewCommand(context.Background(), &out)
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.Execute()
			if err == nil {
				t.Fatalf("Execute(%v) succeeded, want an error naming %s", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Execute(%v) error = %q, want it to name %s", tt.args, err, tt.want)
			}
		})
	}
}

func TestVersionPrintsAndExits(t *testing.T) {
	if got := strings.TrimSpace(runRoot(t, "--version")); !strings.HasPrefix(got, "v") {
		t.Errorf("--version printed %q, want a version starting with v", got)
	}
}

func TestHelpListsGroupedFlags(t *testing.T) {
	out := runRoot(t, "--help")
	for _, want := range []string{"Metrics server flags:", "Kubelet client flags:", "Apiserver secure serving flags:",
		"--kubelet-preferred-address-types", "--requestheader-allowed-names", "--kubelet-endpoint", "--zero-usage-pods", "-v, --v Level"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not show %q", want)
		}
	}
}

// runRoot runs metrics-server with args that print and exit (--help,
// --version) and returns what it printed; it fails the test on an error.
func runRoot(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCommand(context.Background(), &out)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String()
}
