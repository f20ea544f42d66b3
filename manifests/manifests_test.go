package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
)

// object is one YAML document of the base, kept raw and by kind/name.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	raw []byte
}

func loadBase(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("base/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]object{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o.raw = doc
			out[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return out
}

func TestKustomizationListsEveryFile(t *testing.T) {
	b, err := os.ReadFile("base/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("base/*.yaml")
	var want []string
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" {
			want = append(want, name)
		}
	}
	sort.Strings(want)
	sort.Strings(k.Resources)
	if diff := cmp.Diff(want, k.Resources); diff != "" {
		t.Errorf("kustomization resources (-files +listed):\n%s", diff)
	}
}

func TestAPIServices(t *testing.T) {
	objs := loadBase(t)
	type spec struct {
		Group                string `json:"group"`
		Version              string `json:"version"`
		GroupPriorityMinimum int    `json:"groupPriorityMinimum"`
		VersionPriority      int    `json:"versionPriority"`
		Service              struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"service"`
	}
	priorities := map[string]int{}
	for _, v := range []string{"v1", "v1beta1"} {
		o, ok := objs["APIService/"+v+".metrics.k8s.io"]
		if !ok {
			t.Fatalf("APIService %s.metrics.k8s.io missing", v)
		}
		var a struct {
			Spec spec `json:"spec"`
		}
		if err := yaml.Unmarshal(o.raw, &a); err != nil {
			t.Fatal(err)
		}
		if a.Spec.Group != "metrics.k8s.io" || a.Spec.Version != v || a.Spec.Service.Name != "metrics-server" || a.Spec.Service.Namespace != "kube-system" {
			t.Errorf("APIService %s: %+v", v, a.Spec)
		}
		priorities[v] = a.Spec.VersionPriority
	}
	if priorities["v1"] <= priorities["v1beta1"] {
		t.Errorf("v1 versionPriority %d must exceed v1beta1's %d so kubectl prefers v1", priorities["v1"], priorities["v1beta1"])
	}
}

func TestServerRBACCoversBothKubeletEndpoints(t *testing.T) {
	o, ok := loadBase(t)["ClusterRole/system:metrics-server"]
	if !ok {
		t.Fatal("ClusterRole system:metrics-server missing")
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(o.raw, &role); err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				granted[res+":"+v] = true
			}
		}
	}
	for _, need := range []string{"nodes/stats:get", "nodes/metrics:get", "nodes:list", "nodes:watch", "pods:list", "pods:watch"} {
		if !granted[need] {
			t.Errorf("system:metrics-server lacks %s", need)
		}
	}
}

func TestDeploymentUsesRealFlagsAndProbes(t *testing.T) {
	o, ok := loadBase(t)["Deployment/metrics-server"]
	if !ok {
		t.Fatal("Deployment metrics-server missing")
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(o.raw, &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	fs := pflag.NewFlagSet("metrics-server", pflag.ContinueOnError)
	for _, set := range options.NewOptions().Flags().FlagSets {
		fs.AddFlagSet(set)
	}
	if err := fs.Parse(c.Args); err != nil {
		t.Errorf("deployment args %v do not parse as our flags: %v", c.Args, err)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Errorf("probes must hit /readyz and /livez")
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65534 || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container must run as 65534 (as the image's USER) with a read-only root: %+v", sc)
	}
	var port int32
	for _, p := range c.Ports {
		if p.Name == "https" {
			port = p.ContainerPort
		}
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--secure-port=10250") || port != 10250 {
		t.Errorf("--secure-port and the https container port disagree")
	}
}
