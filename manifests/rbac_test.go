package manifests

import (
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
	{Namespace: "default", Group: "events.k8s.io", Resource: "events", Verb: "create"}:     "Node events when a scrape starts or stops failing (pkg/nodeevents; a Node's events live in default), and the bootstrap's Warning events about APIServices (default too)",
	{Namespace: "default", Group: "events.k8s.io", Resource: "events", Verb: "patch"}:      "a repeated event counted up in its series",
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

// bootstrapGrants is what the serving-certificate bootstrap uses when a
// Deployment runs with --tls-bootstrap-secret=<namespace>/<name>: get and
// update of that Secret (the manifests ship it empty, the server fills
// it), and get and patch of the caBundle of each APIService of
// --tls-bootstrap-apiservices. Never create: the API cannot restrict
// create to a name, and creating Secrets in kube-system mints bootstrap
// tokens (SECURITY.md).
func bootstrapGrants(secret string, apiServices []string) map[grant]string {
	ns, name, _ := strings.Cut(secret, "/")
	g := map[grant]string{
		{Namespace: ns, Resource: "secrets", Name: name, Verb: "get"}:    "the bootstrap reads its Secret",
		{Namespace: ns, Resource: "secrets", Name: name, Verb: "update"}: "the bootstrap fills the shipped Secret and renews the serving certificate in it",
	}
	for _, a := range apiServices {
		g[grant{Group: "apiregistration.k8s.io", Resource: "apiservices", Name: a, Verb: "get"}] = "the bootstrap reads the APIService's caBundle"
		g[grant{Group: "apiregistration.k8s.io", Resource: "apiservices", Name: a, Verb: "patch"}] = "the bootstrap writes its CA into the APIService's caBundle"
	}
	return g
}

// defaultBootstrapAPIServices is --tls-bootstrap-apiservices' default.
var defaultBootstrapAPIServices = []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}

// wantGrants is every permission the server rendered in objs uses: needed,
// and bootstrapGrants when its Deployment runs the bootstrap.
func wantGrants(t *testing.T, objs []object) map[grant]string {
	t.Helper()
	want := map[grant]string{}
	for g, why := range needed {
		want[g] = why
	}
	for _, args := range deploymentArgs(t, objs) {
		secret, apiServices := "", defaultBootstrapAPIServices
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--tls-bootstrap-secret="); ok {
				secret = v
			}
			if v, ok := strings.CutPrefix(a, "--tls-bootstrap-apiservices="); ok {
				apiServices = splitList(v)
			}
		}
		if secret != "" {
			for g, why := range bootstrapGrants(secret, apiServices) {
				want[g] = why
			}
		}
	}
	return want
}

// deploymentArgs returns the first container's arguments of every
// Deployment in objs.
func deploymentArgs(t *testing.T, objs []object) [][]string {
	t.Helper()
	var out [][]string
	for _, d := range deployments(t, objs) {
		out = append(out, d.Spec.Template.Spec.Containers[0].Args)
	}
	return out
}

// installs are the kustomizations an operator applies: the base and every
// overlay.
func installs(t *testing.T) []string {
	t.Helper()
	overlays, err := filepath.Glob("overlays/*")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"base"}, overlays...)
}

// TestServerRBACIsLeastPrivilege renders the base and every overlay with
// kustomize, lists every verb on every resource granted to the server's
// ServiceAccount by every binding, and fails on anything the server does
// not use (and on anything it needs but lacks). What it uses depends on
// its flags: the serving-certificate bootstrap's Secret and APIServices
// only where the Deployment runs with --tls-bootstrap-secret.
func TestServerRBACIsLeastPrivilege(t *testing.T) {
	for _, dir := range installs(t) {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			got := serverGrants(t, objs)
			want := wantGrants(t, objs)
			for g := range got {
				if _, ok := want[g]; !ok {
					t.Errorf("%s grants the server %s, which it never uses (via %s)", dir, g, got[g])
				}
			}
			for g, why := range want {
				if _, ok := got[g]; !ok {
					t.Errorf("%s does not grant the server %s, needed: %s", dir, g, why)
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

// splitList splits a comma-separated flag value; "" is the empty list (as
// --tls-bootstrap-apiservices= means none).
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
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
