package manifests

import (
	"bytes"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomize renders the kustomization in dir as `kubectl kustomize dir`
// does (the same kustomize library and options: without --reorder the
// order is the kustomization's sortOptions, else kustomize's legacy
// order), so the tests see exactly what an operator applies.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("rendering %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("rendering %s: %v", dir, err)
	}
	return out
}

// render returns the objects kustomize renders from dir.
func render(t *testing.T, dir string) []object {
	t.Helper()
	return parse(t, filepath.Join(dir, "kustomization.yaml")+" rendered", kustomize(t, dir))
}

// parse splits a multi-document YAML stream into objects; name is for
// errors only.
func parse(t *testing.T, name string, b []byte) []object {
	t.Helper()
	var out []object
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		doc = bytes.TrimPrefix(doc, []byte("---\n"))
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%s document %d: %v", name, i+1, err)
		}
		if o.Kind == "" {
			t.Fatalf("%s document %d has no kind:\n%s", name, i+1, bytes.TrimSpace(doc))
		}
		o.raw = doc
		out = append(out, o)
	}
	return out
}
