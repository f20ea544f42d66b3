package options

import (
	"bufio"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestDefaultsMatchUpstream(t *testing.T) {
	o := NewOptions()
	fss := o.Flags()
	want := map[string]string{
		"metric-resolution":               "1m0s",
		"secure-port":                     "443",
		"kubelet-request-timeout":         "10s",
		"kubelet-port":                    "10250",
		"kubelet-preferred-address-types": "[Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP]",
		"kubelet-insecure-tls":            "false",
		"kubelet-use-node-status-port":    "false",
		"cert-dir":                        "apiserver.local.config/certificates",
		"kubelet-endpoint":                "auto",
		"zero-usage-pods":                 "serve",
	}
	got := map[string]string{}
	for _, fs := range fss.FlagSets {
		for name := range want {
			if f := fs.Lookup(name); f != nil {
				got[name] = f.DefValue
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flag defaults (-want +got):\n%s", diff)
	}
}

func TestEveryUpstreamFlagIsAccepted(t *testing.T) {
	f, err := os.Open("testdata/upstream-v0.9.0-flags.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ours := map[string]bool{}
	fss := NewOptions().Flags()
	for _, fs := range fss.FlagSets {
		fs.VisitAll(func(fl *pflag.Flag) { ours[fl.Name] = true })
	}
	// klog's -v and -vmodule are added by the command, not by Options.
	ours["v"], ours["vmodule"] = true, true

	var missing []string
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		n++
		if !ours[name] {
			missing = append(missing, name)
		}
	}
	if n < 90 {
		t.Fatalf("read only %d upstream flags; the list is damaged", n)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("upstream flags we do not accept: %v", missing)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Options)
		// wantFlags lists, in order, the flag each expected error names.
		wantFlags []string
	}{
		{name: "defaults are valid", mutate: func(*Options) {}},
		{
			name:      "resolution below 10s",
			mutate:    func(o *Options) { o.MetricResolution = 5 * time.Second; o.Kubelet.RequestTimeout = 2 * time.Second },
			wantFlags: []string{"--metric-resolution"},
		},
		{
			name:      "timeout too close to resolution",
			mutate:    func(o *Options) { o.MetricResolution = 15 * time.Second; o.Kubelet.RequestTimeout = 14 * time.Second },
			wantFlags: []string{"--metric-resolution"},
		},
		{
			name:   "timeout exactly 90% of resolution is fine",
			mutate: func(o *Options) { o.MetricResolution = 20 * time.Second; o.Kubelet.RequestTimeout = 18 * time.Second },
		},
		{
			name:      "insecure TLS excludes a CA",
			mutate:    func(o *Options) { o.Kubelet.InsecureTLS = true; o.Kubelet.CAFile = "/ca.crt" },
			wantFlags: []string{"--kubelet-certificate-authority"},
		},
		{
			name:      "client key without certificate",
			mutate:    func(o *Options) { o.Kubelet.ClientKeyFile = "/k.key" },
			wantFlags: []string{"--kubelet-client-key"},
		},
		{
			name: "completely insecure excludes TLS settings",
			mutate: func(o *Options) {
				o.Kubelet.CompletelyInsecure = true
				o.Kubelet.InsecureTLS = true
			},
			wantFlags: []string{"--kubelet-insecure-tls"},
		},
		{
			name:      "non-positive timeout",
			mutate:    func(o *Options) { o.Kubelet.RequestTimeout = 0 },
			wantFlags: []string{"--kubelet-request-timeout"},
		},
		{
			name:      "unknown address type",
			mutate:    func(o *Options) { o.Kubelet.PreferredAddressTypes = []string{"InternalIP", "Hostnam"} },
			wantFlags: []string{"--kubelet-preferred-address-types"},
		},
		{
			name:      "bad endpoint",
			mutate:    func(o *Options) { o.Kubelet.Endpoint = "cadvisor" },
			wantFlags: []string{"--kubelet-endpoint"},
		},
		{
			name:      "bad node selector",
			mutate:    func(o *Options) { o.Kubelet.NodeSelector = "a=b=c" },
			wantFlags: []string{"--node-selector"},
		},
		{
			name:      "bad zero usage policy",
			mutate:    func(o *Options) { o.ZeroUsagePods = "keep" },
			wantFlags: []string{"--zero-usage-pods"},
		},
		{
			name: "every problem is reported at once",
			mutate: func(o *Options) {
				o.Kubelet.Port = 0
				o.Kubelet.Concurrency = 0
				o.Kubelet.MaxResponseBytes = 10
			},
			wantFlags: []string{"--kubelet-port", "--kubelet-max-response-bytes", "--kubelet-max-concurrency"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			tt.mutate(o)
			errs := o.Validate()
			if len(errs) != len(tt.wantFlags) {
				t.Fatalf("got %d errors %v, want %d naming %v", len(errs), errs, len(tt.wantFlags), tt.wantFlags)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.wantFlags[i]) {
					t.Errorf("error %d = %q, want it to name %s", i, err, tt.wantFlags[i])
				}
			}
		})
	}
}
