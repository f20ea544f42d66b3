package chart

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// helmVersion is the helm test/tools/build-k8s.sh builds into
// test/.cache/bin/helm-<helmVersion>/.
const helmVersion = "v3.22.0"

// release and namespace are those of every render: with this release name
// the chart names its objects as the kustomize base does.
const (
	release   = "metrics-server"
	namespace = "kube-system"
)

// repoRoot is the checkout holding this test module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helmBinary returns the cached helm, failing the test when it was not built.
func helmBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "test/.cache/bin/helm-"+helmVersion, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm %s is not built at %s (%v): run `make k8s` (or test/tools/build-k8s.sh helm) first", helmVersion, bin, err)
	}
	return bin
}

// helm runs the cached helm with args on the chart and returns its standard
// output, or an error carrying its standard error. It gives up after a
// minute.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBinary(t), args...)
	// No user configuration, repositories or caches of the machine.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// valueArgs turns key=value settings into --set flags; a setting that is
// already a flag (--set-file=key=path) is passed as it is.
func valueArgs(values []string) []string {
	var args []string
	for _, v := range values {
		if strings.HasPrefix(v, "--") {
			args = append(args, v)
			continue
		}
		args = append(args, "--set", v)
	}
	return args
}

func chartDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "charts/metrics-server")
}

// object is one rendered or kustomize document, by kind and name, with its
// JSON for decoding into a typed object.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	json []byte
}

// objects are documents keyed by "Kind/name".
type objects map[string]object

// decode unmarshals the object kind/name into out, failing the test when
// it is missing.
func (o objects) decode(t *testing.T, key string, out any) {
	t.Helper()
	obj, ok := o[key]
	if !ok {
		t.Fatalf("%s is missing; have %v", key, o.keys())
	}
	if err := yaml.Unmarshal(obj.json, out); err != nil {
		t.Fatalf("decoding %s: %v", key, err)
	}
}

func (o objects) keys() []string {
	var keys []string
	for k := range o {
		keys = append(keys, k)
	}
	return keys
}

// names lists every object as "Kind namespace/name" (cluster-scoped:
// "Kind name"), sorted.
func (o objects) names(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, obj := range o {
		n := obj.Kind + " " + obj.Metadata.Name
		if obj.Metadata.Namespace != "" {
			n = obj.Kind + " " + obj.Metadata.Namespace + "/" + obj.Metadata.Name
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// labels returns the object's labels.
func (obj object) labels(t *testing.T) map[string]string {
	t.Helper()
	var m struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(obj.json, &m); err != nil {
		t.Fatalf("decoding %s/%s: %v", obj.Kind, obj.Metadata.Name, err)
	}
	return m.Metadata.Labels
}

// ofKind returns the keys of the objects of one kind.
func (o objects) ofKind(kind string) []string {
	var keys []string
	for k, obj := range o {
		if obj.Kind == kind {
			keys = append(keys, k)
		}
	}
	return keys
}

// parse splits a multi-document YAML stream into objects; empty documents
// (a template that rendered nothing) are dropped.
func parse(t *testing.T, source string, stream []byte) objects {
	t.Helper()
	out := objects{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: reading YAML: %v", source, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v\n%s", source, err, doc)
		}
		if string(js) == "null" {
			continue
		}
		var o object
		if err := yaml.Unmarshal(js, &o); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if o.Kind == "" {
			t.Fatalf("%s: a document without kind:\n%s", source, doc)
		}
		key := o.Kind + "/" + o.Metadata.Name
		if _, dup := out[key]; dup {
			t.Fatalf("%s: %s twice", source, key)
		}
		o.json = js
		out[key] = o
	}
}

// render runs helm template on the chart as release in namespace with
// values (see valueArgs).
func render(t *testing.T, values ...string) (objects, error) {
	t.Helper()
	return renderAs(t, release, namespace, values...)
}

// renderAs is render as another release, in another namespace.
func renderAs(t *testing.T, release, namespace string, values ...string) (objects, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir(t), "--namespace", namespace}, valueArgs(values)...)
	out, err := helm(t, args...)
	if err != nil {
		return nil, err
	}
	return parse(t, "helm template "+strings.Join(values, " "), out), nil
}

// mustRender is render failing the test on an error.
func mustRender(t *testing.T, values ...string) objects {
	t.Helper()
	objs, err := render(t, values...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// loadBase reads every document of manifests/base but the kustomization.
func loadBase(t *testing.T) objects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "manifests/base/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	all := objects{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, o := range parse(t, f, b) {
			all[k] = o
		}
	}
	if len(all) == 0 {
		t.Fatal("manifests/base holds no objects")
	}
	return all
}
