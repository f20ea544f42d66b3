package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestStatusReaderComponent: an overlay of the base with the status-reader
// component renders the ClusterRole metrics-server status needs, and
// nothing more than the base.
func TestStatusReaderComponent(t *testing.T) {
	dir := t.TempDir()
	// kustomize takes other kustomizations by relative path only.
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
	overlay := "resources:\n  - " + rel("base") + "\ncomponents:\n  - " + rel("components/status-reader") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	base := render(t, "base")
	with := render(t, dir)
	if len(with) != len(base)+1 {
		t.Errorf("%d objects with the component, want the base's %d and one more", len(with), len(base))
	}
	var role *rbacv1.ClusterRole
	for _, o := range with {
		if o.Kind == "ClusterRole" && o.Metadata.Name == "system:metrics-server-status-reader" {
			role = &rbacv1.ClusterRole{}
			if err := yaml.Unmarshal(o.raw, role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if role == nil {
		t.Fatal("no ClusterRole system:metrics-server-status-reader")
	}
	want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/status/*"}, Verbs: []string{"get"}}}
	if diff := cmp.Diff(want, role.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if _, ok := role.Labels["rbac.authorization.k8s.io/aggregate-to-view"]; ok {
		t.Errorf("labels %v: not for every viewer", role.Labels)
	}
}
