package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// grant is one verb on one resource (or non-resource URL) in one scope.
type grant struct {
	// Namespace is "" for a cluster-wide grant.
	Namespace, Group, Resource, Name, Verb string
}

func (g grant) String() string {
	s := g.Verb + " " + g.Group + "/" + g.Resource
	if g.Name != "" {
		s += " named " + g.Name
	}
	if g.Namespace != "" {
		s += " in " + g.Namespace
	}
	return s
}

// needed is every permission the server uses, and why. Anything else bound
// to its ServiceAccount is more than it needs. Found by reading what it
// calls: the informers in pkg/server/informers.go (list and watch only, no
// get), the kubelet paths in pkg/scraper/kubelet, and the delegated
// authentication and authorization of k8s.io/apiserver.
var needed = map[grant]string{
	{Resource: "nodes", Verb: "list"}:                                                      "node informer",
	{Resource: "nodes", Verb: "watch"}:                                                     "node informer",
	{Resource: "pods", Verb: "list"}:                                                       "pod metadata informer (running pods)",
	{Resource: "pods", Verb: "watch"}:                                                      "pod metadata informer",
	{Resource: "nodes/metrics", Verb: "get"}:                                               "the kubelet's /metrics/resource",
	{Resource: "nodes/stats", Verb: "get"}:                                                 "the kubelet's /stats/summary",
	{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}:             "delegated authentication of bearer tokens",
	{Group: "authorization.k8s.io", Resource: "subjectaccessreviews", Verb: "create"}:      "delegated authorization",
	{Namespace: "kube-system", Resource: "configmaps", Name: authConfigMap, Verb: "get"}:   "requestheader and client CAs",
	{Namespace: "kube-system", Resource: "configmaps", Name: authConfigMap, Verb: "list"}:  "requestheader and client CAs, kept current",
	{Namespace: "kube-system", Resource: "configmaps", Name: authConfigMap, Verb: "watch"}: "requestheader and client CAs, kept current",
}

const authConfigMap = "extension-apiserver-authentication"

// builtinRoles are the roles the manifests bind but Kubernetes defines
// (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
var builtinRoles = map[string][]rbacv1.PolicyRule{
	"ClusterRole/system:auth-delegator": {
		{Verbs: []string{"create"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}},
		{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}},
	},
	"Role/kube-system/extension-apiserver-authentication-reader": {
		{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{authConfigMap}},
	},
}

// TestServerRBACIsLeastPrivilege renders the base and every overlay, lists
// every verb on every resource granted to the server's ServiceAccount by
// every binding, and fails on anything the server does not use (and on
// anything it needs but lacks).
func TestServerRBACIsLeastPrivilege(t *testing.T) {
	dirs := []string{"base"}
	overlays, err := filepath.Glob("overlays/*")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, overlays...)
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			got := serverGrants(t, objs)
			for g := range got {
				if _, ok := needed[g]; !ok {
					t.Errorf("%s grants the server %s, which it never uses (via %s)", dir, g, got[g])
				}
			}
			for g, why := range needed {
				if _, ok := got[g]; !ok {
					t.Errorf("%s does not grant the server %s, needed for %s", dir, g, why)
				}
			}
		})
	}
}

// TestMetricsReaderIsReadOnly guards the role aggregated into view, edit
// and admin: every user who can view a namespace gets it.
func TestMetricsReaderIsReadOnly(t *testing.T) {
	var role rbacv1.ClusterRole
	o, ok := loadBase(t)["ClusterRole/system:aggregated-metrics-reader"]
	if !ok {
		t.Fatal("ClusterRole system:aggregated-metrics-reader missing")
	}
	if err := yaml.Unmarshal(o.raw, &role); err != nil {
		t.Fatal(err)
	}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			if g != "metrics.k8s.io" {
				t.Errorf("metrics reader grants API group %q", g)
			}
		}
		for _, v := range r.Verbs {
			if !slices.Contains([]string{"get", "list", "watch"}, v) {
				t.Errorf("metrics reader grants verb %q", v)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("metrics reader grants non-resource URLs %v", r.NonResourceURLs)
		}
	}
}

// serverGrants returns every grant bound to the ServiceAccount
// kube-system/metrics-server, each with the binding and role it comes from.
func serverGrants(t *testing.T, objs []object) map[grant]string {
	t.Helper()
	roles := map[string][]rbacv1.PolicyRule{}
	for k, rules := range builtinRoles {
		roles[k] = rules
	}
	for _, o := range objs {
		switch o.Kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			mustUnmarshal(t, o, &r)
			if r.AggregationRule != nil {
				t.Errorf("ClusterRole %s aggregates other roles; the test cannot list its rules", r.Name)
			}
			roles["ClusterRole/"+r.Name] = r.Rules
		case "Role":
			var r rbacv1.Role
			mustUnmarshal(t, o, &r)
			roles["Role/"+r.Namespace+"/"+r.Name] = r.Rules
		}
	}
	got := map[grant]string{}
	for _, o := range objs {
		var b rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
		switch o.Kind {
		case "ClusterRoleBinding", "RoleBinding":
			mustUnmarshal(t, o, &b)
		default:
			continue
		}
		if !slices.ContainsFunc(b.Subjects, isServer) {
			continue
		}
		ns := b.Namespace // "" for a ClusterRoleBinding
		key := b.RoleRef.Kind + "/" + b.RoleRef.Name
		if b.RoleRef.Kind == "Role" {
			key = "Role/" + ns + "/" + b.RoleRef.Name
		}
		rules, ok := roles[key]
		if !ok {
			t.Errorf("%s %s binds %s, which neither the manifests nor Kubernetes define (as far as the test knows)", o.Kind, b.Name, key)
			continue
		}
		for _, r := range rules {
			if len(r.NonResourceURLs) > 0 {
				for _, u := range r.NonResourceURLs {
					for _, v := range r.Verbs {
						got[grant{Resource: u, Verb: v}] = o.Kind + "/" + b.Name + " -> " + key
					}
				}
				continue
			}
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{""}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, n := range names {
						for _, v := range r.Verbs {
							got[grant{Namespace: ns, Group: g, Resource: res, Name: n, Verb: v}] = o.Kind + "/" + b.Name + " -> " + key
						}
					}
				}
			}
		}
	}
	return got
}

func isServer(s rbacv1.Subject) bool {
	return s.Kind == "ServiceAccount" && s.Name == "metrics-server" && s.Namespace == "kube-system"
}

func mustUnmarshal(t *testing.T, o object, into any) {
	t.Helper()
	if err := yaml.Unmarshal(o.raw, into); err != nil {
		t.Fatalf("%s/%s: %v", o.Kind, o.Metadata.Name, err)
	}
}

// rbacKinds are the kinds that grant or bind permissions.
var rbacKinds = []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}

// render returns the objects of the kustomization in dir, following its
// resources and components. It understands only what these manifests use,
// and fails on anything else: a key it does not know, or a patch that
// touches an RBAC object (which it does not apply), so its list of RBAC
// objects is the one kustomize would render.
func render(t *testing.T, dir string) []object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]any
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	var kust struct {
		Resources  []string `json:"resources"`
		Components []string `json:"components"`
		Patches    []struct {
			Path   string `json:"path"`
			Patch  string `json:"patch"`
			Target struct {
				Kind string `json:"kind"`
			} `json:"target"`
		} `json:"patches"`
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	for key := range k {
		if !slices.Contains([]string{"apiVersion", "kind", "resources", "components", "patches", "labels", "images"}, key) {
			t.Fatalf("%s/kustomization.yaml uses %q, which this test does not render; teach render about it", dir, key)
		}
	}
	for _, p := range kust.Patches {
		body := []byte(p.Patch)
		if p.Path != "" {
			if body, err = os.ReadFile(filepath.Join(dir, p.Path)); err != nil {
				t.Fatal(err)
			}
		}
		var head struct {
			Kind string `json:"kind"`
		}
		_ = yaml.Unmarshal(body, &head) // a JSON 6902 patch is a list: no kind
		if slices.Contains(rbacKinds, p.Target.Kind) || slices.Contains(rbacKinds, head.Kind) {
			t.Fatalf("%s patches RBAC (%s%s), which this test does not apply", dir, p.Target.Kind, head.Kind)
		}
	}
	var out []object
	for _, r := range append(kust.Resources, kust.Components...) {
		path := filepath.Join(dir, r)
		if st, err := os.Stat(path); err != nil {
			t.Fatalf("%s: %v", dir, err)
		} else if st.IsDir() {
			out = append(out, render(t, path)...)
			continue
		}
		out = append(out, parseFile(t, path)...)
	}
	return out
}

func parseFile(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%s document %d: %v", path, i+1, err)
		}
		if o.Kind == "" {
			t.Fatalf("%s document %d has no kind:\n%s", path, i+1, strings.TrimSpace(string(doc)))
		}
		o.raw = doc
		out = append(out, o)
	}
	return out
}
