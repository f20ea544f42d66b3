package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// The shipped Secret of the serving-certificate bootstrap, and the label
// every object that exists only for the bootstrap carries.
const (
	bootstrapOwnerAnnotation = "kubemetrics.io/tls-bootstrap"
	bootstrapLabel           = "app.kubernetes.io/component"
	bootstrapLabelValue      = "tls-bootstrap"
)

// TestBootstrapSecretIsShippedEmpty: every install whose Deployment runs
// the bootstrap (--tls-bootstrap-secret=<ns>/<name>) ships that Secret,
// and ships it as an empty shell: type Opaque, no data or stringData (so
// no later apply touches what the server wrote), annotated so the
// bootstrap knows it may fill it. An install without the bootstrap ships
// no such Secret.
func TestBootstrapSecretIsShippedEmpty(t *testing.T) {
	for _, dir := range installs(t) {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			shells := map[string]corev1.Secret{}
			for _, o := range objs {
				if o.Kind != "Secret" {
					continue
				}
				var s corev1.Secret
				mustUnmarshal(t, o, &s)
				if _, ok := s.Annotations[bootstrapOwnerAnnotation]; ok {
					shells[s.Namespace+"/"+s.Name] = s
				}
			}
			var wanted []string
			for _, args := range deploymentArgs(t, objs) {
				ref := flagValue(args, "--tls-bootstrap-secret")
				if ref == "" {
					continue
				}
				wanted = append(wanted, ref)
				s, ok := shells[ref]
				if !ok {
					t.Errorf("the Deployment runs --tls-bootstrap-secret=%s but %s ships no Secret %s annotated %s: the server may not create it", ref, dir, ref, bootstrapOwnerAnnotation)
					continue
				}
				if s.Type != corev1.SecretTypeOpaque {
					t.Errorf("Secret %s has type %q, want Opaque (a kubernetes.io/tls Secret cannot be empty, and the type never changes)", ref, s.Type)
				}
				if len(s.Data) > 0 || len(s.StringData) > 0 {
					t.Errorf("Secret %s ships data %v / stringData %v: an apply would overwrite what the server wrote", ref, keysOf(s.Data), s.StringData)
				}
				if v := s.Annotations[bootstrapOwnerAnnotation]; v != "metrics-server" {
					t.Errorf("Secret %s: annotation %s=%q, want metrics-server as the bootstrap writes it", ref, bootstrapOwnerAnnotation, v)
				}
				if s.Labels[bootstrapLabel] != bootstrapLabelValue {
					t.Errorf("Secret %s lacks the label %s=%s", ref, bootstrapLabel, bootstrapLabelValue)
				}
			}
			for ref := range shells {
				if !slices.Contains(wanted, ref) {
					t.Errorf("%s ships the bootstrap Secret %s but no Deployment runs the bootstrap with it", dir, ref)
				}
			}
		})
	}
}

// TestBootstrapObjectsAreLabelled: the objects components/without-tls-bootstrap
// takes out of the base are exactly the base's objects labelled
// app.kubernetes.io/component=tls-bootstrap, so the one command of
// docs/tls.md that deletes by that label after a switch to cert-manager
// removes everything the bootstrap left (kubectl apply prunes nothing)
// and nothing else. And no install without the bootstrap renders a
// labelled object.
func TestBootstrapObjectsAreLabelled(t *testing.T) {
	base := render(t, "base")
	without := render(t, withComponents(t, "base", "components/without-tls-bootstrap"))
	kept := map[string]bool{}
	for _, o := range without {
		kept[key(o)] = true
	}
	var removed, labelled []string
	for _, o := range base {
		if !kept[key(o)] {
			removed = append(removed, key(o))
		}
		if labels(t, o)[bootstrapLabel] == bootstrapLabelValue {
			labelled = append(labelled, key(o))
		}
	}
	sort.Strings(removed)
	sort.Strings(labelled)
	if len(removed) == 0 {
		t.Fatal("components/without-tls-bootstrap removes nothing from the base")
	}
	if diff := cmp.Diff(removed, labelled); diff != "" {
		t.Errorf("objects without-tls-bootstrap removes (-) against objects labelled %s=%s (+):\n%s", bootstrapLabel, bootstrapLabelValue, diff)
	}
	for _, o := range without {
		if labels(t, o)[bootstrapLabel] == bootstrapLabelValue {
			t.Errorf("%s is labelled %s=%s but stays without the bootstrap", key(o), bootstrapLabel, bootstrapLabelValue)
		}
	}
	// The documented command selects by that label.
	doc, err := os.ReadFile("../docs/tls.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "-l " + bootstrapLabel + "=" + bootstrapLabelValue; !strings.Contains(string(doc), want) {
		t.Errorf("docs/tls.md has no command selecting %q", want)
	}
}

// dangerous are grants that would let the server's identity become, or
// make, another identity, or widen its own power: no install may give
// any of them to the server, whatever else changes.
var dangerous = []struct {
	group, resource, verb string
}{
	{"", "secrets", "create"},               // a bootstrap token Secret joins system:bootstrappers
	{"", "serviceaccounts", "create"},       // and with its token, any binding to it
	{"", "serviceaccounts/token", "create"}, // a token of any ServiceAccount in scope
	{"", "pods", "create"},                  // a pod runs as any ServiceAccount of its namespace
	{"certificates.k8s.io", "certificatesigningrequests", "create"},
	{"rbac.authorization.k8s.io", "roles", "escalate"},
	{"rbac.authorization.k8s.io", "clusterroles", "escalate"},
	{"rbac.authorization.k8s.io", "roles", "bind"},
	{"rbac.authorization.k8s.io", "clusterroles", "bind"},
}

// TestServerCannotMintIdentities renders every install and fails on any
// grant to the server's ServiceAccount that creates credentials or
// workloads (dangerous), impersonates, or uses a wildcard, even where the
// needed list of rbac_test.go were changed to allow it.
func TestServerCannotMintIdentities(t *testing.T) {
	for _, dir := range installs(t) {
		t.Run(dir, func(t *testing.T) {
			for g, via := range serverGrants(t, render(t, dir)) {
				if g.Verb == "*" || g.Resource == "*" || g.Group == "*" || g.Verb == "impersonate" {
					t.Errorf("%s grants the server %s (via %s): a wildcard or impersonation", dir, g, via)
				}
				for _, d := range dangerous {
					if g.Group == d.group && g.Resource == d.resource && g.Verb == d.verb {
						t.Errorf("%s grants the server %s (via %s): with it the server's identity can mint another", dir, g, via)
					}
				}
			}
		})
	}
}

// withComponents writes a kustomization of base with components (paths
// relative to manifests/) into a temporary folder and returns it.
func withComponents(t *testing.T, base string, components ...string) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, a)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "resources:\n  - " + rel(base) + "\ncomponents:\n"
	for _, c := range components {
		k += "  - " + rel(c) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func key(o object) string {
	k := o.Kind + "/"
	if o.Metadata.Namespace != "" {
		k += o.Metadata.Namespace + "/"
	}
	return k + o.Metadata.Name
}

func labels(t *testing.T, o object) map[string]string {
	t.Helper()
	var m struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	mustUnmarshal(t, o, &m)
	return m.Metadata.Labels
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestMonitoringTrustsTheServingCA: the monitoring component's
// ServiceMonitor verifies the scrape with ca.crt of the Secret that holds
// the serving certificate: the bootstrap's shipped Secret on the base,
// cert-manager's when components/cert-manager follows it.
func TestMonitoringTrustsTheServingCA(t *testing.T) {
	for _, tc := range []struct {
		components []string
		want       string
	}{
		{[]string{"components/monitoring"}, "metrics-server-tls-bootstrap"},
		{[]string{"components/monitoring", "components/cert-manager"}, "metrics-server-tls"},
	} {
		t.Run(strings.Join(tc.components, "+"), func(t *testing.T) {
			var got []string
			for _, o := range render(t, withComponents(t, "base", tc.components...)) {
				if o.Kind != "ServiceMonitor" {
					continue
				}
				var sm struct {
					Spec struct {
						Endpoints []struct {
							TLSConfig struct {
								CA struct {
									Secret struct {
										Name string `json:"name"`
										Key  string `json:"key"`
									} `json:"secret"`
								} `json:"ca"`
							} `json:"tlsConfig"`
						} `json:"endpoints"`
					} `json:"spec"`
				}
				mustUnmarshal(t, o, &sm)
				for _, e := range sm.Spec.Endpoints {
					got = append(got, e.TLSConfig.CA.Secret.Name+"/"+e.TLSConfig.CA.Secret.Key)
				}
			}
			if want := []string{tc.want + "/ca.crt"}; !cmp.Equal(got, want) {
				t.Errorf("ServiceMonitor endpoints verify with %v, want %v", got, want)
			}
		})
	}
}
